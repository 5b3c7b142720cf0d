# asyncchat.m4 - asyncchat's own autoconf macros (aclocal finds them through
# AC_CONFIG_MACRO_DIR([m4]) and ACLOCAL_AMFLAGS = -I m4). libtool copies its
# own macros beside this file at autoreconf time; those are not committed.

# ASYNCCHAT_REQUIRE_MODULES(VARIABLE-PREFIX, MODULES, WHAT, DEBIAN-PACKAGE)
# -------------------------------------------------------------------------
# PKG_CHECK_MODULES, failing with the Debian package that provides WHAT.
AC_DEFUN([ASYNCCHAT_REQUIRE_MODULES],
[PKG_CHECK_MODULES([$1], [$2], [],
  [AC_MSG_ERROR([$3 not found: apt-get install $4])])])

# ASYNCCHAT_PROG_SELENIUM_PYTHON
# ------------------------------
# The browser tests (tests/web) drive Debian's chromium through
# python3-selenium, which only the system python may import (not a pyenv
# one AM_PATH_PYTHON may have found): find a python3 that can, as
# SELENIUM_PYTHON, or set it to "no" and warn.
AC_DEFUN([ASYNCCHAT_PROG_SELENIUM_PYTHON],
[AC_ARG_VAR([SELENIUM_PYTHON], [a python3 that can import selenium, for the browser tests])
AS_IF([test "x$SELENIUM_PYTHON" = "x"],
  [AC_CACHE_CHECK([for a python3 that can import selenium], [ac_cv_path_SELENIUM_PYTHON],
    [AC_PATH_PROGS_FEATURE_CHECK([SELENIUM_PYTHON], [python3],
      [AS_IF(["$ac_path_SELENIUM_PYTHON" -c 'import selenium' >/dev/null 2>&1],
        [ac_cv_path_SELENIUM_PYTHON=$ac_path_SELENIUM_PYTHON
         ac_path_SELENIUM_PYTHON_found=:])],
      [ac_cv_path_SELENIUM_PYTHON=no],
      [$PATH$PATH_SEPARATOR/usr/bin])])
   SELENIUM_PYTHON=$ac_cv_path_SELENIUM_PYTHON])
AS_IF([test "x$SELENIUM_PYTHON" = "xno"],
  [AC_MSG_WARN([no python3 can import selenium: the browser tests will be skipped (apt-get install python3-selenium chromium chromium-driver)])])])

# ASYNCCHAT_BUILD_FLAGS
# ---------------------
# --enable-werror, --enable-debug, --enable-sanitizers and
# --enable-fuzzing (the ENABLE_FUZZING conditional, FUZZ_LINK_FLAGS), and
# WARN_CFLAGS, which every target's AM_CFLAGS carries.
AC_DEFUN([ASYNCCHAT_BUILD_FLAGS],
[AC_ARG_ENABLE([werror],
  [AS_HELP_STRING([--enable-werror], [treat compiler warnings as errors])],
  [], [enable_werror=no])
AC_ARG_ENABLE([debug],
  [AS_HELP_STRING([--enable-debug], [build with -O0 -g3])],
  [], [enable_debug=no])
AC_ARG_ENABLE([sanitizers],
  [AS_HELP_STRING([--enable-sanitizers], [build with AddressSanitizer and UndefinedBehaviorSanitizer])],
  [], [enable_sanitizers=no])
AC_ARG_ENABLE([fuzzing],
  [AS_HELP_STRING([--enable-fuzzing], [build libFuzzer targets (needs CC=clang)])],
  [], [enable_fuzzing=no])
AM_CONDITIONAL([ENABLE_FUZZING], [test "x$enable_fuzzing" = "xyes"])

AC_SUBST([WARN_CFLAGS], ["-Wall -Wextra -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter"])
AS_IF([test "x$enable_werror" = "xyes"], [WARN_CFLAGS="$WARN_CFLAGS -Werror"])
AS_IF([test "x$enable_debug" = "xyes"], [CFLAGS="$CFLAGS -O0 -g3"])
# Fuzzing instruments everything for coverage (fuzzer-no-link) and links the
# libFuzzer driver only into the fuzz targets.
AS_IF([test "x$enable_fuzzing" = "xyes"],
  [FUZZ_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer"
   CFLAGS="$CFLAGS -g $FUZZ_FLAGS"; LDFLAGS="$LDFLAGS -fsanitize=address,undefined"
   AC_SUBST([FUZZ_LINK_FLAGS], ["-fsanitize=fuzzer"])])
AS_IF([test "x$enable_sanitizers" = "xyes"],
  [SAN_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
   CFLAGS="$CFLAGS $SAN_FLAGS"; LDFLAGS="$LDFLAGS $SAN_FLAGS"])])
