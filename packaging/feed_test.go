package packaging

import (
	"encoding/json"
	"io/fs"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// makeVar returns the value of the one-line assignment NAME:=value in a
// Makefile, failing the test when there is not exactly one.
func makeVar(t *testing.T, mk, name string) string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^[ \t]*` + regexp.QuoteMeta(name) + `:=[ \t]*(.*)$`)
	m := re.FindAllStringSubmatch(mk, -1)
	if len(m) != 1 {
		t.Fatalf("Makefile: %d assignments of %s, want 1", len(m), name)
	}
	return m[0][1]
}

// makeBlock returns the body of "define NAME" ... "endef" with make's $$
// turned into $, as the shell script built from it sees it.
func makeBlock(t *testing.T, mk, name string) string {
	t.Helper()
	_, rest, ok := strings.Cut(mk, "\ndefine "+name+"\n")
	if !ok {
		t.Fatalf("Makefile: no define %s", name)
	}
	body, _, ok := strings.Cut(rest, "\nendef\n")
	if !ok {
		t.Fatalf("Makefile: define %s has no endef", name)
	}
	return strings.ReplaceAll(body, "$$", "$") + "\n"
}

func TestFeedMakefile(t *testing.T) {
	mk := readFile(t, feedMake)
	module := strings.TrimSpace(strings.TrimPrefix(strings.SplitN(readFile(t, filepath.Join(repoRoot, "go.mod")), "\n", 2)[0], "module"))
	wantVars := map[string]string{
		"PKG_NAME":           "mwan3d",
		"PKG_BUILD_DEPENDS":  "golang/host",
		"GO_PKG":             module,
		"GO_PKG_BUILD_PKG":   module + "/cmd/mwan3d",
		"GO_PKG_LDFLAGS":     "-s -w",
		"GO_PKG_LDFLAGS_X":   "main.version=$(PKG_VERSION)-r$(PKG_RELEASE)",
		"SECTION":            "net",
		"DEPENDS":            "$(GO_ARCH_DEPENDS) +kmod-nft-core +kmod-nft-socket +kmod-nft-nat +kmod-nft-fib +kmod-nf-conntrack-netlink",
		"PROVIDES":           "mwan3",
		"CONFLICTS":          "mwan3",
		"GO_PKG_TARGET_VARS": "$(filter-out CGO_ENABLED=%,$(GO_PKG_TARGET_VARS)) CGO_ENABLED=0",
	}
	for name, want := range wantVars {
		if got := makeVar(t, mk, name); got != want {
			t.Errorf("%s:=%s, want %s", name, got, want)
		}
	}
	for _, name := range []string{"PKG_VERSION", "PKG_RELEASE", "PKG_MAINTAINER", "PKG_SOURCE_URL"} {
		if makeVar(t, mk, name) == "" {
			t.Errorf("%s is empty", name)
		}
	}
	// The version ldflag must land in cmd/mwan3d's variable.
	if !strings.Contains(readFile(t, filepath.Join(repoRoot, "cmd/mwan3d/main.go")), "\nvar version = ") {
		t.Error("cmd/mwan3d has no package-level `var version` for GO_PKG_LDFLAGS_X")
	}
	for _, line := range []string{
		"include $(TOPDIR)/rules.mk",
		"include $(INCLUDE_DIR)/package.mk",
		"include $(TOPDIR)/feeds/packages/lang/golang/golang-package.mk",
		"$(eval $(call GoBinPackage,mwan3d))",
		"$(eval $(call BuildPackage,mwan3d))",
	} {
		if !strings.Contains(mk, "\n"+line+"\n") {
			t.Errorf("Makefile lacks %q", line)
		}
	}
	// GO_PKG_TARGET_VARS is defined by golang-package.mk: override it after.
	if strings.Index(mk, "GO_PKG_TARGET_VARS:=") < strings.Index(mk, "golang-package.mk\n") {
		t.Error("GO_PKG_TARGET_VARS is set before golang-package.mk is included")
	}
	if got := makeBlock(t, mk, "Package/mwan3d/conffiles"); got != "/etc/config/mwan3\n/etc/mwan3.user\n" {
		t.Errorf("conffiles %q", got)
	}

	// Every file of files/ is installed, and nothing else from there.
	install := makeBlock(t, mk, "Package/mwan3d/install")
	installed := regexp.MustCompile(`\./files/(\S+)`).FindAllStringSubmatch(install, -1)
	var fromMake, onDisk []string
	for _, m := range installed {
		fromMake = append(fromMake, m[1])
	}
	err := filepath.WalkDir(filesDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(filesDir, path)
			onDisk = append(onDisk, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(fromMake)
	slices.Sort(onDisk)
	if !slices.Equal(fromMake, onDisk) {
		t.Errorf("installed from files/: %q\nfiles/ holds: %q", fromMake, onDisk)
	}
	// The daemon runs /etc/mwan3.user itself (after applying each event):
	// a 16-mwan3-user hotplug script would run it a second time.
	if strings.Contains(install, "hotplug.d") {
		t.Error("the package installs a hotplug script")
	}
}

// TestMakefileIncTargets checks that `make ipk` packages each cross-built
// binary under the architecture the tests build it for.
func TestMakefileIncTargets(t *testing.T) {
	inc := readFile(t, "Makefile.inc")
	_, rest, ok := strings.Cut(inc, "IPK_ARCHES := \\\n")
	if !ok {
		t.Fatal("Makefile.inc has no IPK_ARCHES")
	}
	var got []string
	for line := range strings.Lines(rest) {
		line = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(line), "\\"))
		if line == "" {
			break
		}
		got = append(got, line)
	}
	top := readFile(t, filepath.Join(repoRoot, "Makefile"))
	var want []string
	for _, tg := range targets {
		want = append(want, tg.cross+":"+tg.arch)
		extra := strings.Join(tg.env, " ")
		if cross := "linux-" + tg.cross + ":linux:" + tg.goarch + ":" + extra; !strings.Contains(top, cross) {
			t.Errorf("top-level Makefile's CROSS has no %q", cross)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("IPK_ARCHES %q, want %q", got, want)
	}
}

func TestDefaultConfig(t *testing.T) {
	ref := readFile(t, filepath.Join(repoRoot, "config/testdata/default.conf"))
	first, rest, _ := strings.Cut(ref, "\n")
	if !strings.HasPrefix(first, "# source:") {
		t.Fatalf("config/testdata/default.conf starts with %q, not its source line", first)
	}
	if got := readFile(t, filepath.Join(filesDir, "etc/config/mwan3")); got != rest {
		t.Error("the shipped /etc/config/mwan3 is not mwan3's packaged default (config/testdata/default.conf without its source line)")
	}
}

// daemonMethods are the methods mwan3d registers on the mwan3 ubus object.
var daemonMethods = []string{"status", "ifup", "ifdown", "reload", "rules", "explain", "diag", "ruleset", "userrules", "use", "debug"}

func TestRPCDACL(t *testing.T) {
	type scope struct {
		Ubus map[string][]string `json:"ubus"`
	}
	var acl map[string]struct {
		Description string `json:"description"`
		Read        scope  `json:"read"`
		Write       scope  `json:"write"`
	}
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(filesDir, "usr/share/rpcd/acl.d/mwan3d.json"))), &acl); err != nil {
		t.Fatal(err)
	}
	group, ok := acl["mwan3d"]
	if len(acl) != 1 || !ok || group.Description == "" {
		t.Fatalf("want one described group mwan3d, got %+v", acl)
	}
	read, write := group.Read.Ubus["mwan3"], group.Write.Ubus["mwan3"]
	if want := []string{"status", "rules", "explain", "diag", "ruleset", "userrules", "use", "debug"}; !slices.Equal(read, want) {
		t.Errorf("read mwan3 %q, want %q (status is what LuCI calls)", read, want)
	}
	if want := []string{"ifup", "ifdown", "reload"}; !slices.Equal(write, want) {
		t.Errorf("write mwan3 %q, want %q", write, want)
	}
	all := slices.Sorted(slices.Values(append(slices.Clone(read), write...)))
	if want := slices.Sorted(slices.Values(daemonMethods)); !slices.Equal(all, want) {
		t.Errorf("ACL covers %q, daemon methods are %q", all, want)
	}
	if len(group.Read.Ubus) != 1 || len(group.Write.Ubus) != 1 {
		t.Errorf("ACL grants other objects: %+v", group)
	}
}
