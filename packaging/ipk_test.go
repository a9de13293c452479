package packaging

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// target is one OpenWrt architecture `make ipk` builds a package for.
type target struct {
	cross   string   // suffix of the top-level Makefile's cross build (build/mwan3d-linux-<cross>)
	arch    string   // OpenWrt package architecture
	goarch  string   // GOARCH
	env     []string // GOARM / GOMIPS
	machine elf.Machine
	class   elf.Class
	order   binary.ByteOrder
}

var targets = []target{
	{"amd64", "x86_64", "amd64", nil, elf.EM_X86_64, elf.ELFCLASS64, binary.LittleEndian},
	{"arm64", "aarch64_generic", "arm64", nil, elf.EM_AARCH64, elf.ELFCLASS64, binary.LittleEndian},
	{"armv7", "arm_cortex-a7_neon-vfpv4", "arm", []string{"GOARM=7"}, elf.EM_ARM, elf.ELFCLASS32, binary.LittleEndian},
	{"mips", "mips_24kc", "mips", []string{"GOMIPS=softfloat"}, elf.EM_MIPS, elf.ELFCLASS32, binary.BigEndian},
	{"mipsle", "mipsel_24kc", "mipsle", []string{"GOMIPS=softfloat"}, elf.EM_MIPS, elf.ELFCLASS32, binary.LittleEndian},
}

// The packages under test are built with these build.sh arguments.
const (
	testVersion    = "v1.2.3"
	testRelease    = "7"
	testEpoch      = 1700000000
	testIPKVersion = "1.2.3-r7"
)

// built holds the binaries and packages, built once for all tests.
var built struct {
	once sync.Once
	dir  string
	err  error
	log  string
	bin  map[string]string // arch → binary
	real map[string]bool   // arch → bin was compiled for it (not under -short)
	ipk  map[string]string // arch → .ipk
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// packages cross-compiles ./cmd/mwan3d for every target and builds its .ipk
// with build.sh, once per test binary. Under -short only the first target's
// binary is compiled, and packaged for every architecture.
func packages(t *testing.T) {
	t.Helper()
	built.once.Do(func() {
		built.bin, built.real, built.ipk = map[string]string{}, map[string]bool{}, map[string]string{}
		built.dir, built.err = os.MkdirTemp("", "mwan3d-ipk-")
		if built.err != nil {
			return
		}
		var log strings.Builder
		var bin string
		for i, tg := range targets {
			start := time.Now()
			if i == 0 || !testing.Short() {
				bin = filepath.Join(built.dir, "mwan3d-"+tg.arch)
				cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=test", "-o", bin, "./cmd/mwan3d")
				cmd.Dir = repoRoot
				cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+tg.goarch)
				cmd.Env = append(cmd.Env, tg.env...)
				if out, err := cmd.CombinedOutput(); err != nil {
					built.err = fmt.Errorf("go build for %s: %w\n%s", tg.arch, err, out)
					return
				}
				built.real[tg.arch] = true
			}
			out, err := exec.Command("sh", buildScript, "-a", tg.arch, "-b", bin, "-v", testVersion,
				"-r", testRelease, "-e", strconv.Itoa(testEpoch), "-o", built.dir).CombinedOutput()
			if err != nil {
				built.err = fmt.Errorf("build.sh for %s: %w\n%s", tg.arch, err, out)
				return
			}
			built.bin[tg.arch] = bin
			built.ipk[tg.arch] = filepath.Join(built.dir, "mwan3d_"+testIPKVersion+"_"+tg.arch+".ipk")
			fmt.Fprintf(&log, "%s: built in %v: %s", tg.arch, time.Since(start).Round(time.Millisecond), out)
		}
		built.log = log.String()
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
}

// entry is one member of a tar archive.
type entry struct {
	name  string
	typ   byte
	mode  int64
	link  string
	uid   int
	gid   int
	mtime time.Time
	data  []byte
}

// readTarGz returns the members of a gzipped tar archive, in order.
func readTarGz(b []byte) ([]entry, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	tr := tar.NewReader(zr)
	var es []entry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return es, nil
		}
		if err != nil {
			return nil, fmt.Errorf("tar: %w", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("tar %s: %w", h.Name, err)
		}
		es = append(es, entry{h.Name, h.Typeflag, h.Mode & 0o7777, h.Linkname, h.Uid, h.Gid, h.ModTime, data})
	}
}

// ipk is an unpacked package.
type ipk struct {
	outer, control, data []entry
	fields               map[string]string
	order                []string // control field names in order
}

func (p *ipk) file(t *testing.T, part []entry, name string) []byte {
	t.Helper()
	for _, e := range part {
		if e.name == name {
			return e.data
		}
	}
	t.Fatalf("%s missing", name)
	return nil
}

// openIPK unpacks the three layers of a package and parses its control file.
func openIPK(t *testing.T, path string) *ipk {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p := &ipk{}
	if p.outer, err = readTarGz(raw); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if p.data, err = readTarGz(p.file(t, p.outer, "./data.tar.gz")); err != nil {
		t.Fatalf("data.tar.gz: %v", err)
	}
	if p.control, err = readTarGz(p.file(t, p.outer, "./control.tar.gz")); err != nil {
		t.Fatalf("control.tar.gz: %v", err)
	}
	p.fields, p.order, err = parseControl(string(p.file(t, p.control, "./control")))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// parseControl parses "Name: value" fields; a line starting with a space
// continues the previous field.
func parseControl(s string) (map[string]string, []string, error) {
	fields := map[string]string{}
	var order []string
	for i, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		if strings.HasPrefix(line, " ") {
			if len(order) == 0 {
				return nil, nil, fmt.Errorf("control line %d: continuation before any field", i+1)
			}
			last := order[len(order)-1]
			fields[last] += "\n" + strings.TrimPrefix(line, " ")
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || name == "" {
			return nil, nil, fmt.Errorf("control line %d: %q is not a field", i+1, line)
		}
		if _, dup := fields[name]; dup {
			return nil, nil, fmt.Errorf("control line %d: field %s twice", i+1, name)
		}
		fields[name] = strings.TrimPrefix(value, " ")
		order = append(order, name)
	}
	return fields, order, nil
}

// wantFile is one expected member of data.tar.gz; src is the file it must
// be a copy of ("" for directories, the symlink and the binary).
type wantFile struct {
	name string
	typ  byte
	mode int64
	link string
	src  string
}

var wantData = []wantFile{
	{"./", tar.TypeDir, 0o755, "", ""},
	{"./etc/", tar.TypeDir, 0o755, "", ""},
	{"./etc/config/", tar.TypeDir, 0o755, "", ""},
	{"./etc/config/mwan3", tar.TypeReg, 0o600, "", "etc/config/mwan3"},
	{"./etc/init.d/", tar.TypeDir, 0o755, "", ""},
	{"./etc/init.d/mwan3", tar.TypeReg, 0o755, "", "etc/init.d/mwan3"},
	{"./etc/mwan3.user", tar.TypeReg, 0o755, "", "etc/mwan3.user"},
	{"./etc/uci-defaults/", tar.TypeDir, 0o755, "", ""},
	{"./etc/uci-defaults/mwan3-migrate-flush_conntrack", tar.TypeReg, 0o755, "", "etc/uci-defaults/mwan3-migrate-flush_conntrack"},
	{"./usr/", tar.TypeDir, 0o755, "", ""},
	{"./usr/sbin/", tar.TypeDir, 0o755, "", ""},
	{"./usr/sbin/mwan3", tar.TypeSymlink, 0o777, "mwan3d", ""},
	{"./usr/sbin/mwan3d", tar.TypeReg, 0o755, "", ""},
	{"./usr/share/", tar.TypeDir, 0o755, "", ""},
	{"./usr/share/rpcd/", tar.TypeDir, 0o755, "", ""},
	{"./usr/share/rpcd/acl.d/", tar.TypeDir, 0o755, "", ""},
	{"./usr/share/rpcd/acl.d/mwan3d.json", tar.TypeReg, 0o644, "", "usr/share/rpcd/acl.d/mwan3d.json"},
}

var wantControl = []wantFile{
	{"./", tar.TypeDir, 0o755, "", ""},
	{"./conffiles", tar.TypeReg, 0o644, "", ""},
	{"./control", tar.TypeReg, 0o644, "", ""},
	{"./postinst", tar.TypeReg, 0o755, "", ""},
	{"./postinst-pkg", tar.TypeReg, 0o755, "", ""},
	{"./prerm", tar.TypeReg, 0o755, "", ""},
}

// checkMembers compares an archive's members with the expected ones: name,
// order, type, mode, link, owner 0:0, the fixed mtime and, for files with a
// source, their content.
func checkMembers(t *testing.T, part string, got []entry, want []wantFile) {
	t.Helper()
	var names, wantNames []string
	for _, e := range got {
		names = append(names, e.name)
	}
	for _, w := range want {
		wantNames = append(wantNames, w.name)
	}
	if !slices.Equal(names, wantNames) {
		t.Fatalf("%s members:\n got %q\nwant %q", part, names, wantNames)
	}
	for i, w := range want {
		e := got[i]
		if e.typ != w.typ || (w.typ != tar.TypeSymlink && e.mode != w.mode) || e.link != w.link {
			t.Errorf("%s %s: type %q mode %#o link %q, want type %q mode %#o link %q",
				part, e.name, e.typ, e.mode, e.link, w.typ, w.mode, w.link)
		}
		if e.uid != 0 || e.gid != 0 {
			t.Errorf("%s %s: owner %d:%d, want 0:0", part, e.name, e.uid, e.gid)
		}
		if e.mtime.Unix() != testEpoch {
			t.Errorf("%s %s: mtime %v, want %d", part, e.name, e.mtime, testEpoch)
		}
		if w.src != "" && string(e.data) != readFile(t, filepath.Join(filesDir, w.src)) {
			t.Errorf("%s %s differs from %s", part, e.name, filepath.Join(filesDir, w.src))
		}
	}
}

func TestIPKStructure(t *testing.T) {
	packages(t)
	t.Log(built.log)
	wantPostinst := makeBlock(t, readFile(t, feedMake), "Package/mwan3d/postinst")
	for _, tg := range targets {
		t.Run(tg.arch, func(t *testing.T) {
			p := openIPK(t, built.ipk[tg.arch])

			var outer []string
			for _, e := range p.outer {
				outer = append(outer, e.name)
				if e.typ != tar.TypeReg || e.uid != 0 || e.gid != 0 {
					t.Errorf("outer %s: type %q owner %d:%d", e.name, e.typ, e.uid, e.gid)
				}
			}
			if want := []string{"./debian-binary", "./data.tar.gz", "./control.tar.gz"}; !slices.Equal(outer, want) {
				t.Fatalf("outer members %q, want %q", outer, want)
			}
			if got := string(p.file(t, p.outer, "./debian-binary")); got != "2.0\n" {
				t.Errorf("debian-binary %q", got)
			}
			checkMembers(t, "data", p.data, wantData)
			checkMembers(t, "control", p.control, wantControl)

			wantFields := map[string]string{
				"Package":      "mwan3d",
				"Version":      testIPKVersion,
				"Depends":      "kmod-nft-core, kmod-nft-socket, kmod-nft-nat, kmod-nft-fib, kmod-nf-conntrack-netlink",
				"Conflicts":    "mwan3",
				"Provides":     "mwan3",
				"Section":      "net",
				"Architecture": tg.arch,
			}
			for k, v := range wantFields {
				if p.fields[k] != v {
					t.Errorf("control %s: %q, want %q", k, p.fields[k], v)
				}
			}
			wantOrder := []string{"Package", "Version", "Depends", "Conflicts", "Provides", "Section",
				"Maintainer", "Architecture", "Installed-Size", "Description"}
			if !slices.Equal(p.order, wantOrder) {
				t.Errorf("control fields %q, want %q", p.order, wantOrder)
			}
			if !strings.Contains(p.fields["Maintainer"], "mwan3d") {
				t.Errorf("Maintainer %q", p.fields["Maintainer"])
			}
			if d := p.fields["Description"]; !strings.Contains(d, "mwan3") || strings.Count(d, "\n") < 2 {
				t.Errorf("Description %q", d)
			}
			size := 0
			for _, e := range p.data {
				size += len(e.data)
			}
			if p.fields["Installed-Size"] != strconv.Itoa(size) {
				t.Errorf("Installed-Size %s, want %d", p.fields["Installed-Size"], size)
			}

			if got := string(p.file(t, p.control, "./conffiles")); got != "/etc/config/mwan3\n/etc/mwan3.user\n" {
				t.Errorf("conffiles %q", got)
			}
			if got := string(p.file(t, p.control, "./postinst-pkg")); got != wantPostinst {
				t.Errorf("postinst-pkg is not the feed Makefile's postinst:\n%s", got)
			}
			for _, s := range []string{"./postinst", "./prerm"} {
				body := string(p.file(t, p.control, s))
				want := "default_" + strings.TrimPrefix(s, "./") + ` "$0" "$@"`
				if !strings.HasPrefix(body, "#!/bin/sh\n") || !strings.Contains(body, want) {
					t.Errorf("%s does not call %s:\n%s", s, want, body)
				}
			}

			bin := p.file(t, p.data, "./usr/sbin/mwan3d")
			if want := readFile(t, built.bin[tg.arch]); string(bin) != want {
				t.Error("packaged mwan3d is not the binary built for this architecture")
			}
			if !built.real[tg.arch] {
				return // -short: the binary was built for another architecture
			}
			checkELF(t, bin, tg)
			if runtime.GOOS == "linux" && runtime.GOARCH == tg.goarch {
				checkRuns(t, p)
			}
		})
	}
}

// checkELF checks that the binary is a static executable for the target.
func checkELF(t *testing.T, bin []byte, tg target) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		t.Fatalf("mwan3d is not ELF: %v", err)
	}
	defer f.Close()
	if f.Machine != tg.machine || f.Class != tg.class || f.ByteOrder != tg.order || f.Type != elf.ET_EXEC {
		t.Errorf("mwan3d is %v %v %v %v, want %v %v %v executable", f.Machine, f.Class, f.ByteOrder, f.Type, tg.machine, tg.class, tg.order)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("mwan3d is dynamically linked (%v)", p.Type)
		}
	}
}

// checkRuns unpacks the package's files and lets the packaged binary check
// the packaged default configuration, which must load without errors.
func checkRuns(t *testing.T, p *ipk) {
	t.Helper()
	root := t.TempDir()
	for _, e := range p.data {
		path := filepath.Join(root, e.name)
		switch e.typ {
		case tar.TypeDir:
			if err := os.MkdirAll(path, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeSymlink:
			if err := os.Symlink(e.link, path); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			writeFile(t, path, string(e.data), os.FileMode(e.mode))
		}
	}
	out, code := run(t, root, nil, filepath.Join(root, "usr/sbin/mwan3d"), "check", "-c", filepath.Join(root, "etc/config/mwan3"))
	if code != 0 || !strings.Contains(out, " 0 errors") {
		t.Errorf("packaged mwan3d check of the packaged config: exit %d\n%s", code, out)
	}
}

func TestIPKReproducible(t *testing.T) {
	packages(t)
	arch := targets[0].arch
	dir := t.TempDir()
	out, code := run(t, ".", nil, "sh", buildScript, "-a", arch, "-b", built.bin[arch], "-v", testVersion,
		"-r", testRelease, "-e", strconv.Itoa(testEpoch), "-o", dir)
	if code != 0 {
		t.Fatalf("build.sh: exit %d\n%s", code, out)
	}
	again := readFile(t, filepath.Join(dir, filepath.Base(built.ipk[arch])))
	if again != readFile(t, built.ipk[arch]) {
		t.Error("building the same package twice gave different bytes")
	}
}

// buildDummy runs build.sh on a small stand-in binary and returns the exit
// status, output and the packages written.
func buildDummy(t *testing.T, script string, args ...string) (string, int, []string) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "mwan3d")
	writeFile(t, bin, "#!/bin/sh\n", 0o755)
	out := filepath.Join(dir, "out")
	all := append([]string{script, "-b", bin, "-o", out, "-e", "0"}, args...)
	text, code := run(t, ".", nil, "sh", all...)
	ipks, _ := filepath.Glob(filepath.Join(out, "*.ipk"))
	return text, code, ipks
}

func TestIPKVersion(t *testing.T) {
	mk := readFile(t, feedMake)
	defaultVersion := makeVar(t, mk, "PKG_VERSION") + "-r" + makeVar(t, mk, "PKG_RELEASE")
	tests := []struct {
		args []string
		want string
	}{
		{nil, defaultVersion},
		{[]string{"-v", "v1.2.3"}, "1.2.3-r1"},
		{[]string{"-v", "1.2.3", "-r", "12"}, "1.2.3-r12"},
		{[]string{"-v", "v1.2.3-4-gabcdef0"}, "1.2.3.4.gabcdef0-r1"},
		{[]string{"-v", "v1.2.3-4-gabcdef0-dirty"}, "1.2.3.4.gabcdef0.dirty-r1"},
		{[]string{"-v", "a6f10c7"}, "0~a6f10c7-r1"},
		{[]string{"-v", "1157440-dirty"}, "0~1157440.dirty-r1"},
		{[]string{"-v", "dev"}, "0~dev-r1"},
		{[]string{"-v", "v2.0.0 beta/1"}, "2.0.0.beta.1-r1"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			args := append([]string{"-a", "x86_64", "-r", "1"}, tc.args...)
			out, code, ipks := buildDummy(t, buildScript, args...)
			if code != 0 || len(ipks) != 1 {
				t.Fatalf("build.sh %q: exit %d, packages %q\n%s", args, code, ipks, out)
			}
			if want := "mwan3d_" + tc.want + "_x86_64.ipk"; filepath.Base(ipks[0]) != want {
				t.Errorf("package %s, want %s", filepath.Base(ipks[0]), want)
			}
			if got := openIPK(t, ipks[0]).fields["Version"]; got != tc.want {
				t.Errorf("Version %q, want %q", got, tc.want)
			}
		})
	}
}

func TestBuildScriptRejects(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no arch", nil, "missing -a ARCH"},
		{"bad arch", []string{"-a", "x86 64"}, "bad architecture name"},
		{"bad release", []string{"-a", "x86_64", "-r", "r1"}, "bad release"},
		{"bad epoch", []string{"-a", "x86_64", "-e", "yesterday"}, "bad epoch"},
		{"no binary", []string{"-a", "x86_64", "-b", "/nonexistent/mwan3d"}, "binary not found"},
		{"bad option", []string{"-a", "x86_64", "-z"}, "usage"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, code, ipks := buildDummy(t, buildScript, tc.args...)
			if code == 0 || !strings.Contains(out, tc.want) || len(ipks) != 0 {
				t.Errorf("exit %d, packages %q, output %q; want failure mentioning %q", code, ipks, out, tc.want)
			}
		})
	}
	out, code := run(t, ".", nil, "sh", buildScript, "-a", "x86_64")
	if code == 0 || !strings.Contains(out, "missing -b BINARY") {
		t.Errorf("without -b: exit %d %q", code, out)
	}
}

// TestBuildScriptRejectsFeedChanges edits a copy of the feed Makefile the
// way a maintainer might and checks build.sh refuses what it cannot mirror
// instead of building a package that differs from the SDK's.
func TestBuildScriptRejectsFeedChanges(t *testing.T) {
	mk := readFile(t, feedMake)
	tests := []struct {
		name, old, new, want string
	}{
		{"unknown install rule",
			"\t$(INSTALL_DIR) $(1)/etc/init.d\n", "\t$(CP) ./files/etc/init.d/mwan3 $(1)/etc/init.d/\n",
			"install rule not understood"},
		{"source outside files",
			"$(INSTALL_DATA) ./files/usr/share/rpcd/acl.d/mwan3d.json", "$(INSTALL_DATA) /etc/passwd",
			"install source not understood"},
		{"target outside the package",
			"$(INSTALL_BIN) ./files/etc/mwan3.user $(1)/etc/", "$(INSTALL_BIN) ./files/etc/mwan3.user /etc/",
			"install target outside the package"},
		{"missing file",
			"./files/etc/mwan3.user", "./files/etc/mwan3.usr",
			"missing file"},
		{"conffile not installed",
			"/etc/mwan3.user\nendef", "/etc/mwan3.user\n/etc/config/other\nendef",
			"conffile not in the package"},
		{"conditional dependency",
			"+kmod-nft-socket", "+IPV6:kmod-nft-socket",
			"conditional dependency not supported"},
		{"no postinst",
			"define Package/mwan3d/postinst", "define Package/mwan3d/postinstall",
			"no Package/mwan3d/postinst"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(mk, tc.old) {
				t.Fatalf("feed Makefile has no %q", tc.old)
			}
			root := t.TempDir()
			if err := os.CopyFS(root, os.DirFS(".")); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(root, feedMake), strings.Replace(mk, tc.old, tc.new, 1), 0o644)
			out, code, ipks := buildDummy(t, filepath.Join(root, buildScript), "-a", "x86_64")
			if code == 0 || !strings.Contains(out, tc.want) || len(ipks) != 0 {
				t.Errorf("exit %d, packages %q, output %q; want failure mentioning %q", code, ipks, out, tc.want)
			}
		})
	}
}
