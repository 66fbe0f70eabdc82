#!/bin/bash
# ux.sh - what the user sees (issue 13), run as a user would, through pipes:
# the exact next steps per output format (vhdx, vhd dynamic/fixed/not whole
# MiB, raw), per Windows (8.1, 7, Vista), with --debug and with the machine
# files; the commands they print run (qemu-img) and do what they say;
# --json carries them as a list of {text, command}; -q leaves nothing on
# success; warnings go to stderr, results to stdout; unknown options are one
# line + "Try"; help COMMAND; each refusal of options that disagree; errors
# name the file once; BitLocker has no kernel-version noise.
. "$(dirname "$0")/lib.sh"
need qemu-img python3
[ -x "$top_srcdir/scripts/mkfixture" ] || skip "scripts/mkfixture not there yet"
W7=$(fixture win7-sp1 vhdx)
W81=$(fixture win81 vhdx)
VISTA=$(fixture vista-sp2 vhdx)
cd "$TMP" || die "no $TMP"
ln -s "$W7" win7.vhdx; ln -s "$W81" win81.vhdx; ln -s "$VISTA" vista.vhdx

# run NAME ARGS...: gen2prep with stdout in NAME.out, stderr in NAME.err
run() { local n=$1; shift; "$GEN2PREP" "$@" >"$n.out" 2>"$n.err"; echo $? >"$n.rc"; }
same() { # DESCRIPTION FILE [MORE], expected text on stdin (then the line(s) MORE)
	cat >"$TMP/.want"
	[ $# -lt 3 ] || printf '%s\n' "$3" >>"$TMP/.want"
	if diff -u "$TMP/.want" "$2" >"$TMP/.diff"; then ok "$1"; else fail "$1"; sed 's/^/    /' "$TMP/.diff"; fi
}

# the last two next steps of every Windows 7 Professional conversion
W7_PRO_STEPS='  4. Windows 7 Professional has no video driver for Generation 2: the console
     stays without a desktop. Use Enhanced Session, which needs SynthRdp (from
     NanaRun) installed in the guest - install it while it still boots as
     Generation 1.
  5. The Generation 2 keyboard is a VMBus device: Integration Services older
     than 6.2.9200.16385 leave Windows 7 Professional without a keyboard.'

# ---- next steps: VHDX, Windows 8.1 (Secure Boot stays on) ----
run w81 convert win81.vhdx 'my disk.vhdx'
assert_eq "win81 -> vhdx: exit 0" 0 "$(cat w81.rc)"
assert_eq "win81 -> vhdx: nothing on stderr" "" "$(cat w81.err)"
same "win81 -> vhdx: the exact text (real path, quoted for PowerShell)" w81.out <<'EOF'
Wrote my disk.vhdx (vhdx, dynamic): Windows 8.1 Pro, layout gpt, ESP partition 1.
Next steps:
  1. Copy my disk.vhdx to the Hyper-V host. There, in PowerShell as
     administrator, create a Generation 2 machine that boots from it on its
     SCSI controller (give the disk's path on that host):
       New-VM -Name 'my disk' -Generation 2 -MemoryStartupBytes 2048MB -VHDPath 'my disk.vhdx'
  2. Start it:
       Start-VM -Name 'my disk'
EOF

# ---- VHDX, Windows 7: Secure Boot off, Enhanced Session, keyboard ----
run w7 convert win7.vhdx "it's.vhdx"
same "win7 -> vhdx: the exact text (quote doubled)" w7.out "$W7_PRO_STEPS" <<'EOF'
Wrote it's.vhdx (vhdx, dynamic): Windows 7 Professional, layout gpt, ESP partition 1.
Next steps:
  1. Copy it's.vhdx to the Hyper-V host. There, in PowerShell as administrator,
     create a Generation 2 machine that boots from it on its SCSI controller
     (give the disk's path on that host):
       New-VM -Name 'it''s' -Generation 2 -MemoryStartupBytes 2048MB -VHDPath 'it''s.vhdx'
  2. Turn Secure Boot off (the patched kernel and boot loader are not signed):
       Set-VMFirmware -VMName 'it''s' -EnableSecureBoot Off
  3. Start it:
       Start-VM -Name 'it''s'
EOF

# ---- Vista, --layout mbr: no warning any more; the Vista steps ----
run v convert --layout mbr vista.vhdx v.vhdx
assert_eq "vista --layout mbr: exit 0" 0 "$(cat v.rc)"
assert_eq "vista --layout mbr: no warning (the MBR warning is gone)" "" "$(cat v.err)"
assert_match "vista: Enhanced Session step names Vista" "^  4\. Windows Vista \(TM\) Ultimate has no video driver" "$(cat v.out)"
assert_match "vista: the keyboard step" "older$|older " "$(sed -n '/^  5\./,$p' v.out)"

# ---- VHD, dynamic: Azure rule, the fixed copy command, the VHDX command ----
run vd convert win81.vhdx w.vhd
same "win81 -> dynamic vhd: the exact text" vd.out <<'EOF'
Wrote w.vhd (vhd, dynamic): Windows 8.1 Pro, layout gpt, ESP partition 1.
Next steps:
  1. Hyper-V boots a Generation 2 machine from a VHDX only, not from this VHD.
     A VHD is for Azure, which takes a fixed VHD whose virtual size is a whole
     number of MiB (the file is that plus a 512-byte footer).
  2. It is dynamic: make a fixed copy for Azure (force_size keeps the virtual
     size, 1025 MiB):
       qemu-img convert -f vpc -O vpc -o subformat=fixed,force_size w.vhd w.fixed.vhd
  3. Upload the fixed VHD as a page blob or a managed disk (Add-AzVhd, az disk
     create --upload-type Upload, azcopy) and create the disk or image as
     Hyper-V generation V2.
  4. For Hyper-V, make a VHDX of it (or convert win81.vhdx again with -O vhdx):
       qemu-img convert -f vpc -O vhdx w.vhd w.vhdx
EOF
assert_eq "dynamic vhd, whole MiB: no warning" "" "$(cat vd.err)"
# the printed commands, run: the fixed copy is N MiB + 512 bytes, the VHDX converts
eval "$(sed -n 's/^       \(qemu-img .*\)$/\1/p' vd.out | head -1)"
check "the printed qemu-img made w.fixed.vhd" test -s w.fixed.vhd
assert_eq "w.fixed.vhd: 1025 MiB + the 512-byte footer (Azure's size rule)" $((1025 * 1048576 + 512)) "$(stat -c %s w.fixed.vhd)"
assert_eq "w.fixed.vhd: qemu-img sees the same virtual size" $((1025 * 1048576)) \
	"$(qemu-img info -f vpc --output=json w.fixed.vhd | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')"
eval "$(sed -n 's/^       \(qemu-img .*\)$/\1/p' vd.out | tail -1)"
check "the printed qemu-img made a VHDX" sh -c "qemu-img info w.vhdx | grep -q 'file format: vhdx'"

run vf convert -o subformat=fixed win81.vhdx wf.vhd
check "fixed vhd: no 'make a fixed copy' step" bash -c '! grep -q "It is dynamic" vf.out'
assert_match "fixed vhd: the upload step" "^  2\. Upload the fixed VHD" "$(cat vf.out)"

# ---- VHD whose virtual size is not a whole number of MiB ----
# 1 GiB + 1.5 MiB: room for the backup GPT, so the size stays as it is
qemu-img convert -f vhdx -O raw "$W81" odd.raw && truncate -s +1536K odd.raw
run vo convert odd.raw odd.vhd
assert_eq "odd size vhd: exit 0" 0 "$(cat vo.rc)"
assert_eq "odd size vhd: the warning, on stderr" \
	"gen2prep: warning: the VHD's virtual size, $((1024 * 1048576 + 1572864)) bytes, is not a whole number of MiB: Azure refuses such a VHD" \
	"$(cat vo.err)"
check "odd size vhd: no warning on stdout" bash -c '! grep -q warning vo.out'
assert_match "odd size vhd: the step says to resize IN" "^  2\. This one is $((1024 * 1048576 + 1572864)) bytes, not a whole number of MiB: Azure" "$(cat vo.out)"
check "odd size vhd: no upload step" bash -c '! grep -q "Upload the fixed" vo.out'
run voq convert -q odd.raw oddq.vhd
assert_eq "odd size vhd -q: nothing on stdout" "" "$(cat voq.out)"
assert_eq "odd size vhd -q: nothing on stderr" "" "$(cat voq.err)"
run vodry convert --dry-run odd.raw oddd.vhd
assert_match "odd size vhd --dry-run: the warning before writing" "not a whole number of MiB" "$(cat vodry.err)"

# ---- raw: qemu/KVM with OVMF, how to make a VHDX ----
rm -f w.vhdx   # made by the VHD step above; an existing name is never suggested
run r convert win81.vhdx w.raw
same "win81 -> raw: the exact text" r.out <<'EOF'
Wrote w.raw (raw): Windows 8.1 Pro, layout gpt, ESP partition 1.
Next steps:
  1. Hyper-V does not attach raw images. Boot it with qemu/KVM and UEFI
     firmware (OVMF, no Secure Boot), the disk on the IDE controller Windows
     used in Generation 1:
       qemu-system-x86_64 -machine pc,accel=kvm -cpu host -smp 2 -m 2048 -bios /usr/share/ovmf/OVMF.fd -drive file=w.raw,format=raw,if=ide
  2. For Hyper-V, make a VHDX of it (or convert win81.vhdx again with -O vhdx):
       qemu-img convert -f raw -O vhdx -o subformat=dynamic w.raw w.vhdx
EOF
eval "$(sed -n 's/^       \(qemu-img .*\)$/\1/p' r.out)"
check "raw: the printed qemu-img made a VHDX" sh -c "qemu-img info w.vhdx | grep -q 'file format: vhdx'"
check "raw: the VHDX holds the same bytes (qemu-img compare)" qemu-img compare -q -f raw -F vhdx w.raw w.vhdx
check "raw: never suggests Hyper-V's New-VM" bash -c '! grep -q New-VM r.out vd.out'

# ---- --debug: the COM port as a pipe; COM3/COM4 refused ----
run d convert --debug serial:2:57600 win81.vhdx dbg.vhdx
assert_match "debug: Secure Boot off for the debugger" "^  2\. Turn Secure Boot off \(for the kernel debugger\):" "$(cat d.out)"
assert_match "debug: Set-VMComPort on COM2 with the machine's pipe" "Set-VMComPort -VMName 'dbg' -Number 2 -Path '\\\\\\\\\.\\\\pipe\\\\dbg-com2'" "$(cat d.out)"
assert_match "debug: the windbg line with the baud rate" 'port=\\\\\.\\pipe\\dbg-com2,baud=57600' "$(cat d.out)"
for port in 3 4; do
	run d$port convert --debug serial:$port:115200 win81.vhdx d$port.vhdx
	assert_eq "--debug serial:$port: usage error" 2 "$(cat d$port.rc)"
	assert_eq "--debug serial:$port: says why" "gen2prep: convert: --debug serial:$port: Hyper-V and NanaBox machines have COM1 and COM2 only
Try 'gen2prep convert --help'." "$(cat d$port.err)"
	check "--debug serial:$port: nothing written" test ! -e d$port.vhdx
done

# ---- --nanabox / --hyperv-script: the files and what to do with each ----
mkdir vm
run nb convert win7.vhdx vm/w7.vhdx --nanabox vm/w7.7b --hyperv-script vm/w7.ps1 --vm-name 'Sévén'
same "machine files: the exact text" nb.out "$W7_PRO_STEPS" <<'EOF'
Wrote vm/w7.vhdx (vhdx, dynamic): Windows 7 Professional, layout gpt, ESP partition 1.
Wrote vm/w7.7b: a NanaBox machine 'Sévén' for vm/w7.vhdx.
Wrote vm/w7.ps1: a PowerShell script that creates the Hyper-V machine 'Sévén' for vm/w7.vhdx.
Next steps:
  1. Copy vm/w7.vhdx and vm/w7.7b to the Windows host, keeping their places
     relative to each other (the .7b names the disk as w7.vhdx), and open w7.7b
     in NanaBox: a Generation 2 machine with Secure Boot off and the disk on
     SCSI.
  2. Copy vm/w7.vhdx and vm/w7.ps1 to the Hyper-V host, keeping their places
     relative to each other (the script names the disk as w7.vhdx); there, in
     its folder, run the script in PowerShell as administrator: it creates the
     Generation 2 machine 'Sévén' with Secure Boot off and the disk on SCSI.
       powershell -ExecutionPolicy Bypass -File '.\w7.ps1'
  3. Start it:
       Start-VM -Name 'Sévén'
EOF
assert_eq ".ps1 starts with the UTF-8 BOM" "efbbbf" "$(head -c 3 vm/w7.ps1 | od -An -tx1 | tr -d ' \n')"
check ".ps1: the name is UTF-8 after the BOM" python3 -c 'import sys; b=open(sys.argv[1],"rb").read(); sys.exit(not (b.startswith(b"\xef\xbb\xbf#") and "Sévén".encode() in b and b[3:].decode("utf-8")))' vm/w7.ps1

# ---- --json: the same steps as data ----
run j convert --json win7.vhdx j.vhdx
check "--json: valid JSON on stdout" python3 -c 'import json,sys; json.load(open(sys.argv[1]))' j.out
assert_eq "--json: next_steps is a list of {text, command}" "ok" "$(python3 -c '
import json,sys
s=json.load(open(sys.argv[1]))["next_steps"]
ok=isinstance(s,list) and len(s)==5 and all(set(x)=={"text","command"} and isinstance(x["text"],str) and (x["command"] is None or isinstance(x["command"],str)) for x in s)
print("ok" if ok else s)' j.out)"
assert_eq "--json: the commands are the printed ones" \
	"$(sed -n 's/^       //p' w7.out | sed "s/it''s/j/g")" \
	"$(jget j.out '"\n".join(x["command"] for x in j["next_steps"] if x["command"])')"
assert_eq "--json: step 4 has no command" null "$(jget j.out 'j["next_steps"][3]["command"]')"
run jd convert --json --dry-run win7.vhdx jd.vhdx
assert_eq "--json --dry-run: no next steps (nothing written): the key, empty" "[]" "$(jget jd.out 'j["next_steps"]')"

# ---- -q: nothing on success; errors still ----
run q convert -q win7.vhdx q.vhdx
assert_eq "-q: exit 0" 0 "$(cat q.rc)"
assert_eq "-q: nothing on stdout" "" "$(cat q.out)"
assert_eq "-q: nothing on stderr" "" "$(cat q.err)"
check "-q: OUT written" test -s q.vhdx
run qw convert -q --esp-size 200 win7.vhdx qw.vhdx
assert_eq "-q with a warning: nothing at all" "" "$(cat qw.out qw.err)"
run qe convert -q win7.vhdx q.vhdx
assert_eq "-q, OUT exists: exit 7" 7 "$(cat qe.rc)"
assert_match "-q: the error still on stderr" "^gen2prep: convert: output-refused: 'q.vhdx' exists" "$(cat qe.err)"

# ---- warnings: stderr, always; results: stdout ----
run ws convert --esp-size 200 win7.vhdx ws.vhdx
assert_eq "--esp-size with reuse: the warning on stderr" \
	"gen2prep: warning: --esp-size 200 is ignored: the ESP is partition 1 as it is (100 MiB); --esp append adds one of that size" "$(cat ws.err)"
check "--esp-size with reuse: no warning on stdout" bash -c '! grep -qi warning ws.out'
run wsd convert --dry-run --esp-size 200 win7.vhdx wsd.vhdx
assert_match "--dry-run: the warning on stderr" "^gen2prep: warning: --esp-size 200 is ignored" "$(cat wsd.err)"
check "--dry-run: the plan on stdout, no warning there" bash -c 'grep -q "^Layout:" wsd.out && ! grep -qi warning wsd.out'
run wa convert --dry-run --esp append --esp-size 200 win7.vhdx wa.vhdx
assert_eq "--esp append --esp-size: no warning" "" "$(cat wa.err)"
run fv convert --dry-run --force-version 6.1 win81.vhdx fv.vhdx
assert_match "--force-version 6.1 on 6.3: warned" "^gen2prep: warning: --force-version 6.1 on a 6.3 kernel: the catalog patches a kernel it was not made for" "$(cat fv.err)"
run fv2 convert --dry-run --force-version 6.1 win7.vhdx fv2.vhdx
assert_eq "--force-version 6.1 on 6.1: no warning" "" "$(cat fv2.err)"

# ---- options that disagree ----
run of convert -O vhd win7.vhdx of.vhdx
assert_eq "-O vhd with OUT .vhdx: usage error" 2 "$(cat of.rc)"
assert_eq "-O vhd with OUT .vhdx: how to confirm" "gen2prep: convert: -O vhd, but 'of.vhdx' is named as a vhdx image: name it .vhd to confirm (or leave -O out)
Try 'gen2prep convert --help'." "$(cat of.err)"
check "-O vhd with OUT .vhdx: nothing written" test ! -e of.vhdx
run of3 convert -O raw win7.vhdx of3.vhd
assert_eq "-O raw with OUT .vhd: usage error" 2 "$(cat of3.rc)"
run of2 convert -O raw win7.vhdx of2.img
assert_eq "-O raw with OUT .img agrees: exit 0" 0 "$(cat of2.rc)"
assert_eq "-O raw with OUT .img: no warning" "" "$(cat of2.err)"
run of4 convert -O vhd win7.vhdx of4.img
assert_eq "-O vhd with OUT .img: converted" 0 "$(cat of4.rc)"
assert_eq "-O vhd with OUT .img: warned, not silent" "gen2prep: warning: -O vhd, but 'of4.img' is named as a raw image: Hyper-V goes by the extension (.vhd)" "$(cat of4.err)"
echo keep >target
ln -s target link.vhdx
mkfifo fifo.vhdx
run ol convert --overwrite win7.vhdx link.vhdx
assert_eq "--overwrite onto a symlink: exit 7" 7 "$(cat ol.rc)"
assert_eq "--overwrite onto a symlink: why" "gen2prep: convert: 'link.vhdx' is a symbolic link: the output must be a regular file (give another name)" "$(cat ol.err)"
assert_eq "the link's target is untouched" keep "$(cat target)"
check "the link is still a link" test -L link.vhdx
run ofi convert --overwrite win7.vhdx fifo.vhdx
assert_eq "--overwrite onto a FIFO: exit 7" 7 "$(cat ofi.rc)"
assert_match "--overwrite onto a FIFO: why" "'fifo.vhdx' is a FIFO: the output must be a regular file" "$(cat ofi.err)"
if mknod dev.vhdx c 1 3 2>/dev/null; then
	run od convert --overwrite win7.vhdx dev.vhdx
	assert_eq "--overwrite onto a device node: exit 7" 7 "$(cat od.rc)"
	assert_match "--overwrite onto a device node: why" "'dev.vhdx' is a device node" "$(cat od.err)"
	check "the device node is still one" test -c dev.vhdx
fi
run ons convert --overwrite win7.vhdx ons.vhdx --nanabox link.vhdx
assert_eq "--nanabox onto a symlink: exit 7" 7 "$(cat ons.rc)"
check "... nothing converted" test ! -e ons.vhdx
run hs convert win7.vhdx hs.vhd --hyperv-script hs.ps1
assert_eq "--hyperv-script with a VHD output: usage error" 2 "$(cat hs.rc)"
assert_match "--hyperv-script with a VHD output: why" "^gen2prep: convert: --hyperv-script needs a VHDX output: Hyper-V boots a Generation 2 machine from a VHDX only" "$(cat hs.err)"
check "--hyperv-script with a VHD output: nothing written" test ! -e hs.vhd -a ! -e hs.ps1
run nbv convert -q win7.vhdx nbv.vhd --nanabox nbv.7b
assert_eq "--nanabox with a VHD output: accepted (NanaBox attaches VHD)" 0 "$(cat nbv.rc)"
run pt patch "$W7"
assert_eq "patch FILE without -o/--in-place: usage error" 2 "$(cat pt.rc)"
assert_match "patch: says to choose" "^gen2prep: patch: choose where the patched file goes: -o OUT, or --in-place" "$(cat pt.err)"
check "patch: no 'refusing to overwrite'" bash -c '! grep -q refusing pt.err'

# ---- unknown options, help COMMAND ----
for c in inspect convert verify patch bcd; do
	run u$c $c -x a b
	assert_eq "$c -x: one line + Try" "gen2prep: $c: unknown option '-x'
Try 'gen2prep $c --help'." "$(cat u$c.err)"
	assert_eq "$c -x: exit 2" 2 "$(cat u$c.rc)"
	run l$c $c --no-such-option a
	assert_eq "$c --no-such-option: one line + Try" "gen2prep: $c: unknown option '--no-such-option'
Try 'gen2prep $c --help'." "$(cat l$c.err)"
	run h$c help $c
	assert_eq "help $c: exit 0" 0 "$(cat h$c.rc)"
	check "help $c = $c --help" cmp h$c.out <("$GEN2PREP" $c --help)
done
run vi inspect -v win7.vhdx
assert_eq "inspect does not take -v (it has nothing more to show)" "gen2prep: inspect: unknown option '-v'
Try 'gen2prep inspect --help'." "$(cat vi.err)"
run ma convert win7.vhdx x.vhdx --layout
assert_eq "a missing argument" "gen2prep: convert: option '--layout' needs an argument
Try 'gen2prep convert --help'." "$(cat ma.err)"
run hx help frobnicate
assert_eq "help of an unknown command: exit 2" 2 "$(cat hx.rc)"
run vv verify -v q.vhdx
assert_match "verify -v: more (passing checks' details)" "^ok " "$(cat vv.out)"

# ---- errors name the file once ----
for c in inspect verify bcd; do
	run e$c $c nope.vhdx
	assert_eq "$c: nope.vhdx appears once" 1 "$(grep -o nope.vhdx e$c.err | wc -l)"
done
assert_eq "inspect: the exact line (gen2prep: CMD: as every command)" "gen2prep: inspect: nope.vhdx: cannot open: No such file or directory" "$(cat einspect.err)"
run ec convert nope.vhdx out.vhdx
assert_eq "convert: the exact line" "gen2prep: convert: nope.vhdx: cannot open: No such file or directory" "$(cat ec.err)"
head -c 100000 "$W7" >trunc.vhdx
run et inspect trunc.vhdx
assert_eq "a truncated image named once" 1 "$(grep -o trunc.vhdx et.err | wc -l)"

# ---- BitLocker: the blocker alone ----
"$top_srcdir/scripts/mkfixture" --os win7-sp1 --format raw --bad bitlocker bl.raw >mk.log 2>&1 || die "mkfixture bitlocker"
run bl inspect bl.raw
assert_eq "bitlocker: exit 4" 4 "$(cat bl.rc)"
check "bitlocker inspect: no kernel version 0.0" bash -c '! grep -q "0\.0" bl.out bl.err'
run bld convert --dry-run bl.raw bl.vhdx
assert_eq "bitlocker dry run: the BitLocker blocker alone" "BLOCKED (bitlocker): partition 2 is encrypted with BitLocker: decrypt it first" "$(grep BLOCKED bld.out)"
run blj convert --json --dry-run bl.raw bl.vhdx
check "bitlocker JSON: no unsupported-version" bash -c '! grep -q "unsupported-version\|0\.0:" blj.out'

# ---- the next step's target is never IN, OUT or an existing file ----
run nsv convert win7.vhdx win7.vhd
assert_eq "win7.vhdx -> win7.vhd: exit 0" 0 "$(cat nsv.rc)"
assert_match "vhd: the VHDX step writes win7-gen2.vhdx, not the input" \
	"qemu-img convert -f vpc -O vhdx win7\.vhd win7-gen2\.vhdx$" "$(cat nsv.out)"
check_fails "vhd: no command writes win7.vhdx" grep -Eq ' win7\.vhdx$' nsv.out
: >win7-gen2.vhdx
run nsr convert win7.vhdx win7.img
assert_eq "win7.vhdx -> win7.img: exit 0" 0 "$(cat nsr.rc)"
assert_match "raw: win7.vhdx and win7-gen2.vhdx exist: the step writes win7-gen2-2.vhdx" \
	"qemu-img convert -f raw -O vhdx -o subformat=dynamic win7\.img win7-gen2-2\.vhdx$" "$(cat nsr.out)"
assert_eq "raw: win7-gen2.vhdx left empty" 0 "$(stat -c %s win7-gen2.vhdx)"

# ---- a comma in a qemu -drive value is doubled ----
run cm convert win7.vhdx a,b.raw
assert_match "raw a,b.raw: file=a,,b.raw" "-drive file=a,,b\.raw,format=raw,if=ide$" "$(cat cm.out)"

# ---- -O vhdx to a .img name: Hyper-V needs the .vhdx name, so rename first ----
run o3 convert -O vhdx win7.vhdx o3.img
assert_eq "-O vhdx o3.img: exit 0" 0 "$(cat o3.rc)"
assert_match "-O vhdx o3.img: the rename step" "^       mv -n o3\.img o3\.vhdx$" "$(cat o3.out)"
assert_match "-O vhdx o3.img: New-VM takes o3.vhdx" "-VHDPath 'o3\.vhdx'$" "$(cat o3.out)"
check_fails "-O vhdx o3.img: New-VM never given o3.img" grep -q "VHDPath 'o3.img'" o3.out

# ---- -q wins over -p (either order) ----
run qp convert -q -p win7.vhdx qp.vhdx
assert_eq "-q -p: exit 0" 0 "$(cat qp.rc)"
assert_eq "-q -p: no progress on stderr" "" "$(cat qp.err)"
assert_eq "-q -p: nothing on stdout" "" "$(cat qp.out)"

# ---- option conflicts the plan finds are usage errors with the Try line ----
run bd convert --bootdebug win7.vhdx bd.vhdx
assert_eq "--bootdebug without --debug: exit 2" 2 "$(cat bd.rc)"
assert_eq "--bootdebug without --debug: one line + Try" "gen2prep: convert: --bootdebug needs --debug serial:PORT:BAUD (the port the boot debugger waits on)
Try 'gen2prep convert --help'." "$(cat bd.err)"
run sf convert -o subformat=fixed -O raw win7.vhdx sf.raw
assert_eq "-o subformat=fixed -O raw: exit 2" 2 "$(cat sf.rc)"
assert_eq "-o subformat=fixed -O raw: one line + Try" "gen2prep: convert: -o subformat=fixed applies to vhdx and vhd outputs only
Try 'gen2prep convert --help'." "$(cat sf.err)"
check "no output left by the refusals" test ! -e bd.vhdx -a ! -e sf.raw
