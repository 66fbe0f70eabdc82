#!/bin/bash
# plan-graph.sh - the plan is the whole truth about the ESP (issue 8, owner:
# plan): the ESP file list (plan.esp_contents) and the BCD object graph
# (plan.bcd_objects) that `convert --dry-run --json` prints are exactly
# what convert then writes, read back with independent tools:
#  * the BCD store copied out of the output's ESP with mtools (mcopy) and
#    printed by `gen2prep bcd --json STORE` equals plan.bcd_objects;
#  * every folder and file on the output ESP, copied out with `mcopy -s`
#    and measured by the file system here, equals plan.esp_contents (paths
#    and sizes, nothing more, nothing less);
#  * inspect --json prints the same graph and list as the dry run.
# Over GPT and MBR layouts and 6.0 / 6.1 / 6.3 fixtures (the graph differs:
# {hypervisorsettings} and bootmenupolicy only for 6.2+).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/convert-lib.sh"
need qemu-img mcopy sfdisk python3

# ESP partition number of a raw image (GPT type C12A7328-..., MBR type ef)
esp_number() {
	sfdisk --json "$1" | python3 -c '
import json, sys
t = json.load(sys.stdin)["partitiontable"]
for i, p in enumerate(t["partitions"], 1):
    if p["type"].upper() in ("C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "EF"):
        print(p["node"][len(sys.argv[1]):]); break' "$1"
}

one() { # OS LAYOUT
	local os=$1 layout=$2 in n d=$TMP/$1-$2
	in=$(fixture "$os" vhdx)
	mkdir -p "$d"
	assert_exit "$os $layout: dry run" 0 "$GEN2PREP" convert --dry-run --json --layout "$layout" "$in" "$d/o.vhdx"
	printf '%s' "$OUT" >"$d/plan.json"
	assert_exit "$os $layout: inspect" 0 "$GEN2PREP" inspect --json "$in"
	printf '%s' "$OUT" >"$d/inspect.json"
	assert_exit "$os $layout: convert" 0 "$GEN2PREP" convert -q --layout "$layout" "$in" "$d/o.vhdx"
	qemu-img convert -O raw "$d/o.vhdx" "$d/o.raw" || { fail "$os $layout: qemu-img cannot read the output"; return; }
	n=$(esp_number "$d/o.raw")
	[ -n "$n" ] || { fail "$os $layout: no ESP on the output (sfdisk)"; return; }
	extract_part "$d/o.raw" "$n" "$d/esp.img"
	rm -f "$d/o.raw"
	check "$os $layout: mcopy reads the BCD store off the ESP" mcopy -n -i "$d/esp.img" ::/EFI/Microsoft/Boot/BCD "$d/BCD"
	assert_exit "$os $layout: bcd --json of that store" 0 "$GEN2PREP" bcd --json "$d/BCD"
	printf '%s' "$OUT" >"$d/bcd.json"
	mkdir -p "$d/tree"
	check "$os $layout: mcopy -s copies the whole ESP" mcopy -s -n -m -i "$d/esp.img" ::/EFI "$d/tree/"
	python3 - "$d" "$os $layout" <<'PY' >"$d/why" 2>&1
import json, os, sys
d, name = sys.argv[1], sys.argv[2]
plan = json.load(open(d + "/plan.json"))["plan"]
ins = json.load(open(d + "/inspect.json"))
bcd = json.load(open(d + "/bcd.json"))["objects"]
bad = []
if plan["bcd_objects"] != bcd:
    want = {o["identifier"]: o for o in plan["bcd_objects"]}
    got = {o["identifier"]: o for o in bcd}
    bad.append("BCD graph differs: plan-only %s, store-only %s, differing %s" % (
        sorted(set(want) - set(got)), sorted(set(got) - set(want)),
        sorted(k for k in set(want) & set(got) if want[k] != got[k])))
on_esp = {}
for root, dirs, files in os.walk(d + "/tree"):
    rel = os.path.relpath(root, d + "/tree")
    if rel != ".":
        on_esp[rel + "/"] = 0
    for f in files:
        p = os.path.join(root, f)
        on_esp[os.path.relpath(p, d + "/tree")] = os.path.getsize(p)
planned = {e["path"] + ("/" if e["dir"] else ""): (0 if e["dir"] else e["size"]) for e in plan["esp_contents"]}
if planned != on_esp:
    bad.append("ESP differs: planned only %s; on the ESP only %s; sizes %s" % (
        sorted(set(planned) - set(on_esp)), sorted(set(on_esp) - set(planned)),
        sorted((k, planned[k], on_esp[k]) for k in set(planned) & set(on_esp) if planned[k] != on_esp[k])))
if len(plan["esp_contents"]) != len(planned):
    bad.append("esp_contents names a path twice")
if plan["esp_contents"][-1]["path"] != "EFI/Microsoft/Boot/BCD" or plan["esp_contents"][-1]["from"] is not None:
    bad.append("the BCD store is not the last, generated entry")
# inspect's plan (defaults) equals the dry run's for the default layout
if name.endswith("gpt") and (ins["plan"]["bcd_objects"] != plan["bcd_objects"] or ins["plan"]["esp_contents"] != plan["esp_contents"]):
    bad.append("inspect --json prints another graph or file list than the dry run")
print("; ".join(bad) if bad else "%d objects, %d ESP entries" % (len(bcd), len(on_esp)))
sys.exit(1 if bad else 0)
PY
	if [ $? = 0 ]; then ok "$os $layout: plan = ESP and store written ($(cat "$d/why"))"
	else fail "$os $layout: $(head -c 1500 "$d/why")"; fi
	rm -rf "$d/tree" "$d/esp.img" "$d/o.vhdx"
}

one win7-sp1 gpt
one win7-sp1 mbr
one vista-sp2 gpt
one win81 gpt
