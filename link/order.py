# The functions on the code pages a traced run executed (link/touch.c), in
# first-touch order: the order LLD lays them out in (build.rs).
#   order.py SYMBOLS_BIN PAGES... > order.txt
#   order.py --check BIN [ORDER]    how many ordered names BIN has; fails when
#                                   the rustc that made ORDER built BIN and
#                                   fewer than 90% are left (run code-order.sh)
import bisect
import subprocess
import sys


def functions(binary):
    """(address, size, name) of every function in the binary's symbol table, by address."""
    out = subprocess.check_output(["nm", "-S", "--defined-only", binary]).decode(errors="replace")
    syms = []
    for line in out.splitlines():
        p = line.split()
        if len(p) == 4 and p[2] in "tTwW" and int(p[1], 16) > 0:
            syms.append((int(p[0], 16), int(p[1], 16), p[3]))
    return sorted(syms)


def rustc_version():
    return subprocess.check_output(["rustc", "--version"]).decode().strip()


def order(binary, page_files):
    syms = functions(binary)
    starts = [s[0] for s in syms]
    pages = [int(line, 16) for f in page_files for line in open(f)]
    seen, out = set(), []
    for page in pages:
        k = max(bisect.bisect_right(starts, page) - 1, 0)
        while k < len(syms) and syms[k][0] < page + 4096:
            start, size, name = syms[k]
            if start + size > page and name not in seen:
                seen.add(name)
                out.append(name)
            k += 1
    size = sum(s for _, s, n in syms if n in seen)
    sys.stderr.write(
        f"traced run: {len(set(pages))} code pages in {len({p >> 16 for p in pages})} 64 KiB windows; "
        f"ordered: {len(out)} functions, {size >> 10} KiB\n"
    )
    # LLD skips lines starting with '#'.
    print(f"# {rustc_version()}")
    print("\n".join(out))


def check(binary, order_file):
    lines = open(order_file).read().splitlines()
    made_by = next((line[2:] for line in lines if line.startswith("# rustc")), None)
    wanted = [line for line in lines if line and not line.startswith("#")]
    have = {s[2] for s in functions(binary)}
    found = sum(1 for name in wanted if name in have)
    share = found / max(len(wanted), 1)
    print(f"{order_file}: {found} of {len(wanted)} functions found in {binary} ({share:.0%}); made by {made_by}")
    if made_by == rustc_version() and share < 0.9:
        print(f"{order_file} is stale for this build: run scripts/code-order.sh", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "--check":
        sys.exit(check(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "link/order.txt"))
    order(sys.argv[1], sys.argv[2:])
