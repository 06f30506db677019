# usage: order.py SYMBOLS_BIN PAGES... > order.txt
# The functions on the code pages a traced run executed (link/touch.c), in
# first-touch order: the order LLD is to lay them out in (build.rs).
import sys,subprocess,bisect
symbin=sys.argv[1]
# section file offsets vs vaddr: touch offsets are from load base = vaddr
syms=[]
for l in subprocess.check_output(['nm','-S','--defined-only',symbin]).decode(errors='replace').splitlines():
    p=l.split()
    if len(p)==4 and p[2] in 'tTwW' and int(p[1],16)>0:
        syms.append((int(p[0],16),int(p[1],16),p[3]))
syms.sort()
addrs=[s[0] for s in syms]
seen=set(); out=[]
for f in sys.argv[2:]:
    for l in open(f):
        page=int(l,16)
        k=max(bisect.bisect_right(addrs,page)-1,0)
        while k<len(syms) and syms[k][0]<page+4096:
            a,s,n=syms[k]
            if a+s>page and n not in seen:
                seen.add(n); out.append(n)
            k+=1
pages=[int(l,16) for f in sys.argv[2:] for l in open(f)]
size=sum(s for a,s,n in syms if n in seen)
sys.stderr.write(f"traced run: {len(set(pages))} code pages in {len({p >> 16 for p in pages})} 64 KiB windows; "
                 f"ordered: {len(out)} functions, {size >> 10} KiB\n")
print('\n'.join(out))
