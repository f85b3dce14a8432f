# nnc.m4 - Autoconf macros for projects that compile .nn models with nnc.
# Installed into $(datadir)/aclocal by nnc's `make install`; aclocal finds
# it there (or through ACLOCAL_PATH for another prefix).
#
# serial 1

# NNC_PROG([MIN-VERSION], [ACTION-IF-FOUND], [ACTION-IF-NOT-FOUND])
# ------------------------------------------------------------------
# Finds the nnc compiler and its runtime library:
#   NNC           the compiler (an absolute path; precious: ./configure
#                 NNC=/opt/nnc/bin/nnc overrides it)
#   NNCRT_CFLAGS  flags to compile the C nnc emits (pkg-config nncrt)
#   NNCRT_LIBS    libraries to link it with (add -lm)
# all substituted. Both nnc (`nnc --version`) and the runtime must be at
# least MIN-VERSION when it is given. ACTION-IF-NOT-FOUND defaults to an
# error that says what is missing.
AC_DEFUN([NNC_PROG],
[AC_REQUIRE([PKG_PROG_PKG_CONFIG])dnl
AC_ARG_VAR([NNC], [the nnc neural-network compiler])dnl
AC_PATH_PROG([NNC], [nnc], [no])
nnc_prog_ok=yes
nnc_prog_why=
AS_IF([test "x$NNC" = xno],
  [nnc_prog_ok=no
   nnc_prog_why="the nnc compiler was not found in PATH (set NNC)"],
  [m4_ifval([$1],
    [AC_MSG_CHECKING([whether $NNC is at least version $1])
     nnc_prog_version=`"$NNC" --version 2>/dev/null | sed -n 's/^nnc //p'`
     AS_VERSION_COMPARE([$nnc_prog_version], [$1],
       [AC_MSG_RESULT([no ($nnc_prog_version)])
        nnc_prog_ok=no
        nnc_prog_why="nnc $1 or later is needed, $NNC is ${nnc_prog_version:-unknown}"],
       [AC_MSG_RESULT([yes ($nnc_prog_version)])],
       [AC_MSG_RESULT([yes ($nnc_prog_version)])])])])
AS_IF([test "x$nnc_prog_ok" = xyes],
  [PKG_CHECK_MODULES([NNCRT], [nncrt m4_ifval([$1], [>= $1])], [],
    [nnc_prog_ok=no
     nnc_prog_why="the nnc runtime (pkg-config nncrt m4_ifval([$1], [>= $1])) was not found (set PKG_CONFIG_PATH)"])])
AS_IF([test "x$nnc_prog_ok" = xyes],
  [m4_default([$2], [:])],
  [m4_default([$3], [AC_MSG_ERROR([$nnc_prog_why])])])
])
