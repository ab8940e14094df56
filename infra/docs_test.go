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

// TestChecklistUsesTheDeploymentsOutputs: every shell variable
// docs/azure-checklist.md reads without setting comes from azd's
// environment, that is, from main.bicep's outputs.
func TestChecklistUsesTheDeploymentsOutputs(t *testing.T) {
	doc := string(readFile(t, "docs/azure-checklist.md"))
	bicep := string(readFile(t, "infra/main.bicep"))
	outputs := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^output\s+(\w+)\s`).FindAllStringSubmatch(bicep, -1) {
		outputs[m[1]] = true
	}
	set := map[string]bool{}
	assign := regexp.MustCompile(`(?:^|[\s;(])(?:export\s+)?([A-Za-z_]\w*)=`)
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue // a shell comment or a heading sets nothing
		}
		for _, m := range assign.FindAllStringSubmatch(line, -1) {
			set[m[1]] = true
		}
	}
	// $NAME, and "export NAME" (handing azd's value on to handler).
	used := regexp.MustCompile(`\$\{?([A-Z][A-Z0-9_]*)\b|export\s+([A-Z][A-Z0-9_]*)(?:[ \t]|$)`).FindAllStringSubmatch(doc, -1)
	if len(used) == 0 {
		t.Fatal("the checklist uses no variables")
	}
	fromAzd := 0
	for _, m := range used {
		name := m[1] + m[2]
		if set[name] {
			continue
		}
		fromAzd++
		if !outputs[name] {
			t.Errorf("the checklist reads $%s, which neither it nor main.bicep's outputs set", name)
		}
	}
	if fromAzd == 0 {
		t.Error("the checklist reads nothing from the deployment")
	}
}
