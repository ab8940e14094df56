package infra_test

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestREADMEDeployButtonOpensTheTemplate: the button's URL is the
// portal's template URL around the URL-encoded raw GitHub URL of
// infra/azuredeploy.json, in the repository go.mod names.
func TestREADMEDeployButtonOpensTheTemplate(t *testing.T) {
	readme := string(readFile(t, "README.md"))
	m := regexp.MustCompile(`https://portal\.azure\.com/#create/Microsoft\.Template/uri/([^)\s"]+)`).FindStringSubmatch(readme)
	if m == nil {
		t.Fatal("README has no Deploy to Azure link")
	}
	if strings.ContainsAny(m[1], "/:") {
		t.Errorf("the template URL in the button must be URL-encoded: %q", m[1])
	}
	raw, err := url.PathUnescape(m[1])
	if err != nil {
		t.Fatal(err)
	}
	mod := regexp.MustCompile(`(?m)^module\s+github\.com/([^/\s]+)/([^/\s]+)\s*$`).FindStringSubmatch(string(readFile(t, "go.mod")))
	if mod == nil {
		t.Fatal("go.mod's module is not github.com/<org>/<repo>")
	}
	prefix := "https://raw.githubusercontent.com/" + mod[1] + "/" + mod[2] + "/"
	if !strings.HasPrefix(raw, prefix) || !strings.HasSuffix(raw, "/infra/"+templateFile) {
		t.Errorf("the button opens %q, want %s<branch>/infra/%s", raw, prefix, templateFile)
	}
}

// TestREADMERecommendsNoRetiringPlan: new apps go on Flex Consumption;
// the Linux Consumption plan is named only beside its retirement.
func TestREADMERecommendsNoRetiringPlan(t *testing.T) {
	for _, name := range []string{"README.md", "SECURITY.md", "TESTING.md"} {
		text := string(readFile(t, name))
		for _, para := range strings.Split(text, "\n\n") {
			flat := strings.Join(strings.Fields(para), " ")
			if strings.Contains(flat, "Linux Consumption") && !strings.Contains(flat, "retire") {
				t.Errorf("%s names Linux Consumption without its retirement: %q", name, flat)
			}
		}
	}
}
