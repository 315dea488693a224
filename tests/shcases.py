"""Shell snippets that a POSIX sh accepts (VALID) and refuses (INVALID): the parser is checked
against the host's sh (tests/unit/test_shparse.py) and busybox sh in a real boot
(tests/qemu/test_corpus_boot.py)."""

VALID = [
    "echo a; echo b & echo c\n",
    "a && b || c\n",
    "! a | b | c\n",
    "if a; then b; elif c; then d; else e; fi\n",
    "while a; do b; done\nuntil a\ndo\n  b\ndone\n",
    "for x in 1 2 3; do echo $x; done\nfor y\ndo :; done\n",
    "case $x in\n  a|b) echo ab ;;\n  (c) echo c;;\n  *) ;;\nesac\n",
    "case x in esac\n",
    "{ a; b; } > /dev/null 2>&1\n( cd /x && exec y ) &\n",
    'f() { echo "$@"; }\ng()\n{\n  :\n}\nf 1 2\n',
    "cat <<EOF\nbody $x\n  EOF not yet\nEOF\necho after\n",
    "cat <<-'EOF' >out\n\tquoted $x\n\tEOF\n",
    "a 'single ; quoted' \"double $x `b` $(c d) $((1+2))\" \\; e\\\nf\n",
    'x=1 y="2 3" cmd arg >>log 2>&1 <in\n',
    "echo ${x:-default} ${#y} $1 $@ $? $$\n",
    "echo a # a comment; not a command\n# only a comment\n",
    "echo $(echo ')' \"(\" ) done\n",
    "while true\ndo\n  /app\n  sleep 1\ndone &\nwait\n",
    "cat <<EOF\nthe end of the file ends it\n",
]
INVALID = [
    "if a; then b\n",
    "while a; do b\n",
    "echo 'unclosed\n",
    'echo "unclosed\n',
    "a && \n",
    "case x in a) b\n",
    "fi\n",
    "( a\n",
    "for 1x in a; do b; done\n",
    "a | | b\n",
    "{ a; \n",
    "a ;;\n",
    "echo )\n",
    "done\n",
    "if ; then a; fi\n",
    "case x in a) b;; c\nesac\n",
    "x() \n",
]
