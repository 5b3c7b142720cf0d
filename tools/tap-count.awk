# Count the test lines of TAP output the way automake's tap-driver.sh
# judges them, and print "PASSED FAILED SKIPPED": tools/run-tests adds up
# the stages that print TAP without a test-suite.log (valgrind, soak, fuzz).
#
#   ok           passed      ok ... # SKIP      skipped
#   not ok       failed      not ok ... # SKIP  failed
#   not ok # TODO  passed (XFAIL, a known bug)   ok ... # TODO  failed (XPASS)
#   Bail out!    failed
#
# A "#" escaped as "\#" (and "\\" for a backslash) starts no directive.

/^(not )?ok([ \t]|$)/ {
	line = tolower($0)
	gsub(/\\\\/, "", line)
	gsub(/\\#/, "", line)
	notok = (line ~ /^not ok/)
	if (line ~ /#[ \t]*skip([^a-z0-9_]|$)/) {
		if (notok)
			failed++
		else
			skipped++
	} else if (line ~ /#[ \t]*todo([^a-z0-9_]|$)/) {
		if (notok)
			passed++
		else
			failed++
	} else if (notok)
		failed++
	else
		passed++
}

/^Bail out!/ {
	failed++
}

END {
	printf "%d %d %d\n", passed, failed, skipped
}
