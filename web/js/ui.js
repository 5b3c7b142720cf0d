// ui.js - the page: the login prompt and the chat, drawn from a Chat's
// state. Everything a peer sent reaches the page as text nodes
// (textContent), never as markup.

// Make an element with a class and text (both optional).
function el(doc, tag, className, text) {
	const e = doc.createElement(tag);
	if (className)
		e.className = className;
	if (text !== undefined && text !== null)
		e.textContent = text;
	return e;
}

// Two digits.
function pad2(n) {
	return String(n).padStart(2, "0");
}

// A time as HH:MM, with the date in front when it is not today.
export function shortTime(date, now) {
	const hm = pad2(date.getHours()) + ":" + pad2(date.getMinutes());
	if (date.toDateString() === (now || new Date()).toDateString())
		return hm;
	return date.getFullYear() + "-" + pad2(date.getMonth() + 1) + "-" +
	    pad2(date.getDate()) + " " + hm;
}

/* The page's two screens and what the user does on them. */
export class Ui {
	// Find the page's elements and listen to the user.
	constructor(doc) {
		this.doc = doc;
		const $ = (id) => doc.getElementById(id);
		this.e = {
			login: $("login"), loginForm: $("login-form"),
			loginNick: $("login-nick"), loginKey: $("login-key"),
			loginError: $("login-error"), chat: $("chat"),
			status: $("status"), retry: $("retry"), me: $("me"),
			leave: $("leave"), views: $("views"),
			viewTitle: $("view-title"), log: $("log"),
			composer: $("composer"), input: $("input"),
			membersBox: $("members-box"),
			membersTitle: $("members-title"), members: $("members"),
		};
		this.chat = null;
		this.actions = null;
		this.e.loginForm.addEventListener("submit", (ev) => {
			ev.preventDefault();
			if (this.onLogin)
				this.onLogin(this.e.loginNick.value,
				    this.e.loginKey.value);
		});
		this.e.composer.addEventListener("submit", (ev) => {
			ev.preventDefault();
			this.submit();
		});
		this.e.input.addEventListener("keydown", (ev) => this.key(ev));
		this.e.leave.addEventListener("click", () => this.actions?.leave());
		this.e.retry.addEventListener("click", () => this.actions?.retry());
		this.narrow = doc.defaultView.matchMedia("(max-width: 48rem)");
		this.narrow.addEventListener("change", () => this.foldMembers());
	}

	// Show the login prompt, filled in, with an error if there is one.
	showLogin(nick, key, error) {
		this.chat = null;
		this.actions = null;
		this.e.chat.hidden = true;
		this.e.login.hidden = false;
		this.e.loginNick.value = nick;
		this.e.loginKey.value = key;
		this.e.loginError.textContent = error || "";
		this.doc.title = "asyncchat";
		this.e.loginNick.focus();
	}

	// Show an error on the login prompt.
	loginError(text) {
		this.e.loginError.textContent = text;
	}

	/*
	 * Show the chat of this Chat; actions are send(text) (resolves to
	 * true if sent), leave() and retry().
	 */
	showChat(chat, actions) {
		this.chat = chat;
		this.actions = actions;
		this.e.login.hidden = true;
		this.e.chat.hidden = false;
		// Members folded on a narrow screen, where they take room.
		this.foldMembers();
		this.drawViews();
		this.drawLog();
		this.drawMembers();
		this.drawMe();
		this.e.input.value = "";
		this.e.input.focus();
	}

	// Fold the members on a narrow screen, where they take room.
	foldMembers() {
		this.e.membersBox.open = !this.narrow.matches;
	}

	// Redraw what a change of the Chat touched.
	changed(change, detail) {
		if (this.chat === null)
			return;
		switch (change) {
		case "line":
			if (detail.view === this.chat.activeView())
				this.appendLine(detail.line);
			return;
		case "views": {
			const before = this.shown;
			this.drawViews();
			if (this.chat.activeView() !== before) {
				this.drawLog();
				this.drawMembers();
			}
			return;
		}
		case "members":
			if (detail.view === this.chat.activeView())
				this.drawMembers();
			return;
		case "me":
			this.drawMe();
			this.drawMembers();
			return;
		}
	}

	// Show the connection's state in words.
	status(state, text) {
		this.e.status.dataset.state = state;
		this.e.status.textContent = text;
		this.e.retry.hidden = state !== "waiting";
	}

	// Show our nick.
	drawMe() {
		this.e.me.textContent = "You are " + this.chat.nick;
	}

	// Draw the list of views, the active one marked; a view button that
	// had the keyboard focus keeps it.
	drawViews() {
		const doc = this.doc;
		const items = [];
		const active = this.chat.activeView();
		const focused = doc.activeElement?.dataset?.view;
		let refocus = null;
		for (const v of this.chat.ordered()) {
			const li = el(doc, "li");
			const b = el(doc, "button", null, v.label);
			b.type = "button";
			b.dataset.view = v.key;
			if (v === active)
				b.setAttribute("aria-current", "page");
			if (v.unread > 0 && v !== active)
				b.append(el(doc, "span", "unread",
				    " (" + v.unread + " new)"));
			b.addEventListener("click", () => {
				this.chat.activate(v.key);
			});
			li.append(b);
			items.push(li);
			if (v.key === focused)
				refocus = b;
		}
		this.e.views.replaceChildren(...items);
		if (refocus !== null)
			refocus.focus();
		const label = active === null ? "" : active.label;
		this.e.viewTitle.textContent = label;
		this.e.input.placeholder = active === null ? "" :
		    "Message " + label;
		this.doc.title = (label ? label + " – " : "") + "asyncchat";
	}

	// Draw every line of the active view.
	drawLog() {
		const v = this.chat.activeView();
		this.shown = v;
		this.e.log.replaceChildren(...(v === null ? [] :
		    v.lines.map((line) => this.lineElement(line))));
		this.e.log.scrollTop = this.e.log.scrollHeight;
	}

	// Add one line at the bottom, following it if the reader was there.
	appendLine(line) {
		const log = this.e.log;
		const atEnd = log.scrollHeight - log.scrollTop -
		    log.clientHeight < 40;
		log.append(this.lineElement(line));
		while (log.childElementCount > 2000)
			log.firstElementChild.remove();
		if (atEnd)
			log.scrollTop = log.scrollHeight;
	}

	// The element of one line; all of its text set as text.
	lineElement(line) {
		const doc = this.doc;
		const li = el(doc, "li", line.kind);
		const t = el(doc, "time", null, shortTime(line.time));
		t.dateTime = line.time.toISOString();
		t.title = line.time.toLocaleString();
		li.append(t);
		if (line.kind === "message") {
			if (line.own)
				li.classList.add("own");
			const from = el(doc, "span", "from", line.from);
			if (line.own)
				from.append(el(doc, "span", "you", " (you)"));
			li.append(from);
		} else if (line.kind === "error")
			li.append(el(doc, "span", "label", "Error:"));
		li.append(el(doc, "span", "text", line.text));
		return li;
	}

	// Draw the members of the active room.
	drawMembers() {
		const v = this.chat.activeView();
		const items = [];
		if (v !== null && v.kind === "room") {
			const members = [...v.members.entries()].sort((a, b) =>
			    a[1].localeCompare(b[1], undefined,
			    { sensitivity: "base" }));
			for (const [session, nick] of members) {
				const li = el(this.doc, "li", null, nick);
				if (session === this.chat.sessionId)
					li.append(" (you)");
				items.push(li);
			}
			this.e.membersTitle.textContent = "Members of " +
			    v.label + " (" + items.length + ")";
		} else
			this.e.membersTitle.textContent = "Members";
		this.e.members.replaceChildren(...items);
	}

	// Send what was typed; keep it in the input if it could not go.
	async submit() {
		const text = this.e.input.value;
		if (this.actions === null || text === "")
			return;
		this.e.input.value = "";
		if (!await this.actions.send(text) && this.e.input.value === "")
			this.e.input.value = text;
	}

	// Alt+Up and Alt+Down in the input switch to the previous/next view.
	key(ev) {
		if (!ev.altKey || (ev.key !== "ArrowUp" && ev.key !== "ArrowDown"))
			return;
		const views = this.chat.ordered();
		const at = views.indexOf(this.chat.activeView());
		if (views.length === 0)
			return;
		const step = ev.key === "ArrowUp" ? -1 : 1;
		const next = views[(at + step + views.length) % views.length];
		ev.preventDefault();
		this.chat.activate(next.key);
	}
}
