#!/usr/bin/env python3
"""Every tool's command line, and the README's synopses against it.

For each tool: -h and --help print the usage on stdout (nothing on stderr)
and exit 0; --version prints "NAME VERSION" with the project's version;
an unknown option and a missing value exit 2 with stdout empty and a
message on stderr that names the option. For the tools the README
documents (between <!-- tool: NAME --> and <!-- /tool -->): every --flag
the README lists appears in --help and every --flag of --help is in the
README, and both give the same exit codes ("Exit status: ..."). A tool with
--classes (bftnet-replica, bftnet-cluster) refuses a bad class mix with exit
2 and a message naming --classes and the fault.

Usage: tools_cli_test.py [--complete] README VERSION TOOL...
  TOOL: the path to a binary. --complete: every tool the README documents
  must be among them.
"""
import os
import re
import subprocess
import sys

FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def run(args):
    p = subprocess.run(args, capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def exit_codes(text):
    """The codes of the "Exit status:" paragraph: each digit that starts an
    item ("0 done, 1 ..."), up to the paragraph's end."""
    m = re.search(r"Exit status(:.*?)(?:\n\s*\n|<!--|\Z)", text, re.S)
    if not m:
        return None
    return set(re.findall(r"(?:^|[:,])\s*(\d+)\s+[-`\w(]", m.group(1), re.M))


def readme_sections(path):
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    return dict(re.findall(r"<!-- tool: ([\w-]+) -->(.*?)<!-- /tool -->", text, re.S))


def check_tool(exe, version, readme, fails):
    name = os.path.basename(exe)

    def fail(msg):
        fails.append(f"{name}: {msg}")

    helps = {}
    for h in ("-h", "--help"):
        rc, out, err = run([exe, h])
        if rc != 0:
            fail(f"{h} exited {rc}")
        if not out.startswith("usage: " + name):
            fail(f"{h}: no 'usage: {name}' on stdout")
        if err:
            fail(f"{h} wrote to stderr: {err.strip()[:100]}")
        helps[h] = out
    if helps["-h"] != helps["--help"]:
        fail("-h and --help differ")
    rc, out, err = run([exe, "--version"])
    if rc != 0 or out != f"{name} {version}\n":
        fail(f"--version printed {out!r} (exit {rc}), want '{name} {version}'")
    for bad, why in (("--no-such-flag", "unknown option '--no-such-flag'"),
                     ("-Z", "unknown option '-Z'")):
        rc, out, err = run([exe, bad])
        if rc != 2 or out or why not in err:
            fail(f"{bad}: exit {rc}, stdout {out[:60]!r}, stderr {err.strip()[:120]!r}; "
                 f"want 2, nothing, '{why}'")
    # A flag that takes a value, given without one.
    valued = [f for f in re.findall(r"(--[a-z][a-z0-9-]*)[ =]([A-Z][A-Z_]*)", helps["--help"])]
    if valued:
        flag = valued[0][0]
        rc, out, err = run([exe, flag])
        if rc != 2 or out or flag not in err:
            fail(f"{flag} without its value: exit {rc}, stderr {err.strip()[:120]!r}")
    if "--classes" in helps["--help"]:
        check_classes(exe, fail)
    if name not in readme:
        return
    doc = readme[name]
    in_help, in_doc = set(FLAG.findall(helps["--help"])), set(FLAG.findall(doc))
    for f in sorted(in_help - in_doc):
        fail(f"{f} is in --help but not in the README")
    for f in sorted(in_doc - in_help):
        fail(f"{f} is in the README but not in --help")
    ch, cd = exit_codes(helps["--help"]), exit_codes(doc)
    if ch is None or cd is None:
        fail(f"no 'Exit status:' in {'--help' if ch is None else 'the README'}")
    elif ch != cd:
        fail(f"exit codes: --help {sorted(ch)}, README {sorted(cd)}")
    print(f"{name}: {len(in_help)} flags, exit codes {sorted(ch or [])}: help and README agree")


# Bad --classes mixes, and a word the message must carry.
BAD_MIXES = (
    ("vote:prio=x", "prio"),
    ("vote:size=8", "size"),
    ("vote:rate=fast", "rate"),
    ("vote:policy=lifo", "policy"),
    ("vote:ring=100", "ring"),
    ("vote:nokey", "KEY=VALUE"),
    ("vote,vote", "twice"),
    ("a,b,c,d,e,f,g,h,i", "at most 8"),
    ("bad name", "name"),
    ("", "name"),
)


def check_classes(exe, fail):
    for mix, word in BAD_MIXES:
        rc, out, err = run([exe, "--classes", mix])
        if rc != 2 or out or "--classes" not in err or word not in err:
            fail(f"--classes {mix!r}: exit {rc}, stderr {err.strip()[:120]!r}; "
                 f"want 2 and a message with --classes and {word!r}")


def main(argv):
    complete = argv[:1] == ["--complete"]
    if complete:
        argv = argv[1:]
    readme_path, version, tools = argv[0], argv[1], argv[2:]
    readme = readme_sections(readme_path)
    fails = []
    for exe in tools:
        check_tool(exe, version, readme, fails)
    names = {os.path.basename(t) for t in tools}
    for documented in readme if complete else ():
        if documented not in names:
            fails.append(f"the README documents {documented}, which this test did not run")
    for f in fails:
        print("FAIL:", f)
    if not fails:
        print(f"ok: {len(tools)} tools")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
