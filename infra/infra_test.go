package infra_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hexprox/hexprox/internal/config"
	"github.com/hexprox/hexprox/internal/requiretools"
)

// Built-in role definition ids, from Microsoft's list of Azure built-in
// roles (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles,
// pages "Storage", "Security" and "Monitor"); the same in every tenant.
const (
	roleStorageBlobDataOwner         = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
	roleStorageTableDataContributor  = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
	roleStorageTableDataReader       = "76199698-9eea-4c19-bc75-cec21354c6b6"
	roleKeyVaultSecretsUser          = "4633458b-17de-408a-b874-0445c86b69e6"
	roleKeyVaultSecretsOfficer       = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
	roleMonitoringMetricsPublisher   = "3913510d-42f4-4e42-8a64-420c390055eb"
	roleStorageQueueDataContributor  = "974c5e8b-45b9-4653-ba55-5f855dd0fb88" // deliberately not assigned: an HTTP-only host uses no queues
	templateFile                     = "azuredeploy.json"
	flexRuntimeName, flexRuntimeVer  = "custom", "1.0" // the FC1 entry of the "custom" stack in the platform's functionAppStacks catalogue
	flexCatalogueMinInstances        = 40              // same catalogue: maximumInstanceCount 40..1000
	flexCatalogueMaxInstances        = 1000
	identityExpr                     = "[variables('identityId')]"
	adminPrincipalExpr               = "[parameters('principalId')]"
	adminCondition                   = "[variables('adminAssignments')]"
	repoRoot                         = ".."
	hostExecutable                   = "handler"
	deployZip                        = "deploy.zip"
	platformCorsParam                = "platformCors"
	handlerCorsParam                 = "handlerCorsHeaders"
	corsHeadersSetting               = "CORS_HEADERS"
	allowedOriginsSetting            = "ALLOWED_ORIGINS"
	keyVaultNameForTest              = "kv-hexprox-test"
	storageAccountForTest            = "sthexproxtest"
	identityClientIDForTest          = "00000000-1111-2222-3333-444444444444"
	appInsightsConnectionForTest     = "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://example.in.applicationinsights.azure.com/"
	appInsightsAuthenticationForTest = "ClientId=" + identityClientIDForTest + ";Authorization=AAD"
)

// platformSettings are the app settings the template may write that the
// proxy does not read but the platform does:
//   - AzureWebJobsStorage__*: identity-based host storage,
//     https://learn.microsoft.com/azure/azure-functions/functions-reference#connecting-to-host-storage-with-an-identity
//   - APPLICATIONINSIGHTS_*: https://learn.microsoft.com/azure/azure-functions/functions-app-settings#applicationinsights_connection_string
//     and #applicationinsights_authentication_string (Entra ingestion).
//   - AzureFunctionsJobHost__<host.json path>: overrides host.json,
//     https://learn.microsoft.com/azure/azure-functions/functions-host-json#override-hostjson-values
//     (the path's keys are checked in TestHostTelemetryRecordsNoPath).
var platformSettings = append([]string{
	"AzureWebJobsStorage__accountName",
	"AzureWebJobsStorage__blobServiceUri",
	"AzureWebJobsStorage__queueServiceUri",
	"AzureWebJobsStorage__tableServiceUri",
	"AzureWebJobsStorage__credential",
	"AzureWebJobsStorage__clientId",
	"APPLICATIONINSIGHTS_CONNECTION_STRING",
	"APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
}, pathSettings...)

// flexDeprecated are app settings a Flex Consumption app must not have:
// functionAppConfig replaces them,
// https://learn.microsoft.com/azure/azure-functions/functions-app-settings#flex-consumption-plan-deprecations
var flexDeprecated = []string{
	"FUNCTIONS_WORKER_RUNTIME",
	"FUNCTIONS_WORKER_RUNTIME_VERSION",
	"FUNCTIONS_EXTENSION_VERSION",
	"WEBSITE_RUN_FROM_PACKAGE",
	"WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
	"WEBSITE_CONTENTSHARE",
	"SCM_DO_BUILD_DURING_DEPLOYMENT",
	"AzureWebJobsStorage",
}

// pathSettings turn off what of the Functions host's telemetry records
// request URLs; every HexProx path holds a credential or an API key.
//   - httpAutoCollectionOptions.enableHttpTriggerExtendedInfoCollection
//     (default true: "HTTP method, path, and response" in the host's request
//     telemetry, https://learn.microsoft.com/azure/azure-functions/functions-host-json#applicationinsightshttpautocollectionoptions);
//   - enableDependencyTracking: in proxying mode the host's own call to the
//     handler, whose URL is the client's path, is a dependency
//     (Azure/azure-functions-host#11602, fixed only in hosts after PR #11609);
//   - enableLiveMetrics: Live Metrics shows requests as they come.
var pathSettings = []string{
	"AzureFunctionsJobHost__logging__applicationInsights__httpAutoCollectionOptions__enableHttpTriggerExtendedInfoCollection",
	"AzureFunctionsJobHost__logging__applicationInsights__enableDependencyTracking",
	"AzureFunctionsJobHost__logging__applicationInsights__enableLiveMetrics",
}

type parameter struct {
	Type          string         `json:"type"`
	DefaultValue  any            `json:"defaultValue"`
	AllowedValues []any          `json:"allowedValues"`
	MinValue      *float64       `json:"minValue"`
	MaxValue      *float64       `json:"maxValue"`
	Metadata      map[string]any `json:"metadata"`
}

type resource struct {
	Type       string         `json:"type"`
	Name       string         `json:"name"`
	Kind       string         `json:"kind"`
	Scope      string         `json:"scope"`
	Condition  any            `json:"condition"`
	Tags       any            `json:"tags"`
	SKU        map[string]any `json:"sku"`
	Identity   map[string]any `json:"identity"`
	Properties map[string]any `json:"properties"`
	DependsOn  []string       `json:"dependsOn"`
}

type template struct {
	Parameters map[string]parameter `json:"parameters"`
	Variables  map[string]any       `json:"variables"`
	Resources  []resource           `json:"resources"`
	Outputs    map[string]any       `json:"outputs"`
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadTemplate(t *testing.T) template {
	t.Helper()
	var tpl template
	dec := json.NewDecoder(strings.NewReader(string(readFile(t, "infra/"+templateFile))))
	if err := dec.Decode(&tpl); err != nil {
		t.Fatalf("%s is not JSON Go can read (ARM accepts comments; keep them out so this test can read it): %v", templateFile, err)
	}
	if len(tpl.Resources) == 0 || len(tpl.Parameters) == 0 {
		t.Fatalf("%s declares no resources or parameters", templateFile)
	}
	return tpl
}

// one returns the template's only resource of type typ.
func (tpl template) one(t *testing.T, typ string) resource {
	t.Helper()
	var found []resource
	for _, r := range tpl.Resources {
		if strings.EqualFold(r.Type, typ) {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want exactly one %s, found %d", typ, len(found))
	}
	return found[0]
}

// at walks nested objects by keys.
func at(t *testing.T, v any, keys ...string) any {
	t.Helper()
	for i, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: not an object", strings.Join(keys[:i], "."))
		}
		if v, ok = m[k]; !ok {
			t.Fatalf("%s: missing", strings.Join(keys[:i+1], "."))
		}
	}
	return v
}

func want(t *testing.T, what string, got, wanted any) {
	t.Helper()
	if got != wanted {
		t.Errorf("%s = %v, want %v", what, got, wanted)
	}
}

var (
	paramRef    = regexp.MustCompile(`^\[parameters\('(\w+)'\)\]$`)
	variableRef = regexp.MustCompile(`^\[variables\('(\w+)'\)\]$`)
	ifParam     = regexp.MustCompile(`^\[if\(parameters\('(\w+)'\), '([^']*)', '([^']*)'\)\]$`)
	roleRef     = regexp.MustCompile(`^\[subscriptionResourceId\('Microsoft\.Authorization/roleDefinitions', variables\('roles'\)\.(\w+)\)\]$`)
)

// resolve evaluates the few expression shapes the template's settings
// use: literals, parameters('p'), variables('v') and
// if(parameters('b'), 'x', 'y'), with params giving parameter values
// (defaults overridden as an operator would). ok is false for anything
// only Azure can evaluate (reference(), uniqueString(), ...).
func (tpl template) resolve(v any, params map[string]any) (string, bool) {
	s, isString := v.(string)
	if !isString {
		b, _ := json.Marshal(v)
		return string(b), true
	}
	if !strings.HasPrefix(s, "[") {
		return s, true
	}
	if m := paramRef.FindStringSubmatch(s); m != nil {
		val, ok := params[m[1]]
		if !ok {
			if p, declared := tpl.Parameters[m[1]]; declared {
				val = p.DefaultValue
			} else {
				return "", false
			}
		}
		return tpl.resolve(val, params)
	}
	if m := variableRef.FindStringSubmatch(s); m != nil {
		val, ok := tpl.Variables[m[1]]
		if !ok {
			return "", false
		}
		return tpl.resolve(val, params)
	}
	if m := ifParam.FindStringSubmatch(s); m != nil {
		cond, ok := tpl.resolve("[parameters('"+m[1]+"')]", params)
		if !ok {
			return "", false
		}
		if cond == "true" {
			return m[2], true
		}
		return m[3], true
	}
	return "", false
}

func (tpl template) appSettings(t *testing.T) map[string]any {
	t.Helper()
	site := tpl.one(t, "Microsoft.Web/sites")
	list, ok := at(t, site.Properties, "siteConfig", "appSettings").([]any)
	if !ok || len(list) == 0 {
		t.Fatal("siteConfig.appSettings is not a list of settings")
	}
	settings := map[string]any{}
	for _, item := range list {
		name, _ := at(t, item, "name").(string)
		if _, dup := settings[name]; dup {
			t.Errorf("app setting %s written twice", name)
		}
		settings[name] = at(t, item, "value")
	}
	return settings
}

// TestEveryParameterHasADescription: the portal's form shows it, and a
// parameter without a default must say what to give.
func TestEveryParameterHasADescription(t *testing.T) {
	tpl := loadTemplate(t)
	for name, p := range tpl.Parameters {
		if desc, _ := p.Metadata["description"].(string); strings.TrimSpace(desc) == "" {
			t.Errorf("parameter %s: the portal's Deploy to Azure form shows metadata.description; give one", name)
		}
	}
}

func TestStorageIsIdentityOnlyAndHoldsTheDeploymentContainer(t *testing.T) {
	tpl := loadTemplate(t)
	st := tpl.one(t, "Microsoft.Storage/storageAccounts")
	want(t, "storage kind", st.Kind, "StorageV2")
	want(t, "allowSharedKeyAccess", at(t, st.Properties, "allowSharedKeyAccess"), false)
	want(t, "allowBlobPublicAccess", at(t, st.Properties, "allowBlobPublicAccess"), false)
	want(t, "minimumTlsVersion", at(t, st.Properties, "minimumTlsVersion"), "TLS1_2")
	want(t, "supportsHttpsTrafficOnly", at(t, st.Properties, "supportsHttpsTrafficOnly"), true)
	sku, _ := tpl.resolve(st.SKU["name"], nil)
	want(t, "storage sku (default)", sku, "Standard_LRS")

	container := tpl.one(t, "Microsoft.Storage/storageAccounts/blobServices/containers")
	want(t, "container publicAccess", at(t, container.Properties, "publicAccess"), "None")
	if !strings.Contains(container.Name, "variables('deploymentContainerName')") {
		t.Errorf("container name %q does not use variables('deploymentContainerName')", container.Name)
	}
	site := tpl.one(t, "Microsoft.Web/sites")
	store := at(t, site.Properties, "functionAppConfig", "deployment", "storage")
	want(t, "deployment storage type", at(t, store, "type"), "blobContainer")
	if v, _ := at(t, store, "value").(string); !strings.Contains(v, "variables('deploymentContainerName')") || !strings.Contains(v, "primaryEndpoints.blob") {
		t.Errorf("deployment storage value %q is not the storage account's blob endpoint plus the deployment container", v)
	}
	want(t, "deployment storage authentication", at(t, store, "authentication", "type"), "UserAssignedIdentity")
	want(t, "deployment storage identity", at(t, store, "authentication", "userAssignedIdentityResourceId"), identityExpr)
}

func TestFunctionAppIsAFlexConsumptionCustomHandler(t *testing.T) {
	tpl := loadTemplate(t)
	plan := tpl.one(t, "Microsoft.Web/serverfarms")
	want(t, "plan sku name", plan.SKU["name"], "FC1")
	want(t, "plan sku tier", plan.SKU["tier"], "FlexConsumption")
	want(t, "plan reserved (Linux)", at(t, plan.Properties, "reserved"), true)

	site := tpl.one(t, "Microsoft.Web/sites")
	want(t, "app kind", site.Kind, "functionapp,linux")
	want(t, "httpsOnly", at(t, site.Properties, "httpsOnly"), true)
	want(t, "minTlsVersion", at(t, site.Properties, "siteConfig", "minTlsVersion"), "1.2")
	want(t, "ftpsState", at(t, site.Properties, "siteConfig", "ftpsState"), "Disabled")
	want(t, "runtime name", at(t, site.Properties, "functionAppConfig", "runtime", "name"), flexRuntimeName)
	want(t, "runtime version", at(t, site.Properties, "functionAppConfig", "runtime", "version"), flexRuntimeVer)
	if !strings.Contains(at(t, site.Properties, "serverFarmId").(string), "parameters('planName')") {
		t.Error("the app is not on the plan the template makes")
	}
	if _, ok := site.Properties["siteConfig"].(map[string]any)["linuxFxVersion"]; ok {
		t.Error("linuxFxVersion is for the other plans; Flex takes functionAppConfig.runtime")
	}

	// Scale settings come from parameters whose range is the catalogue's.
	scale := at(t, site.Properties, "functionAppConfig", "scaleAndConcurrency")
	m := paramRef.FindStringSubmatch(at(t, scale, "maximumInstanceCount").(string))
	if m == nil {
		t.Fatal("maximumInstanceCount is not a parameter")
	}
	p := tpl.Parameters[m[1]]
	if p.MinValue == nil || p.MaxValue == nil || *p.MinValue < flexCatalogueMinInstances || *p.MaxValue > flexCatalogueMaxInstances {
		t.Errorf("%s must be bounded to %d..%d", m[1], flexCatalogueMinInstances, flexCatalogueMaxInstances)
	}
	m = paramRef.FindStringSubmatch(at(t, scale, "instanceMemoryMB").(string))
	if m == nil {
		t.Fatal("instanceMemoryMB is not a parameter")
	}
	if len(tpl.Parameters[m[1]].AllowedValues) == 0 {
		t.Errorf("%s must list the memory sizes Flex offers as its allowedValues", m[1])
	}
	for _, v := range tpl.Parameters[m[1]].AllowedValues {
		if f, _ := v.(float64); f != 512 && f != 2048 && f != 4096 {
			t.Errorf("instanceMemoryMB allows %v, which Flex does not offer", v)
		}
	}

	// One user-assigned identity, the same one everywhere.
	want(t, "identity type", site.Identity["type"], "UserAssigned")
	ids, _ := site.Identity["userAssignedIdentities"].(map[string]any)
	if _, ok := ids[identityExpr]; !ok || len(ids) != 1 {
		t.Errorf("userAssignedIdentities = %v, want only %s", ids, identityExpr)
	}
	tpl.one(t, "Microsoft.ManagedIdentity/userAssignedIdentities")

	// azd deploys to the app tagged with azure.yaml's service name.
	tags, _ := site.Tags.(string)
	if !strings.Contains(tags, "createObject('azd-service-name', parameters('serviceName'))") {
		t.Errorf("the app's tags %q lack azd-service-name", tags)
	}
	service, _ := tpl.Parameters["serviceName"].DefaultValue.(string)
	if !regexp.MustCompile(`(?m)^services:\s*\n\s+` + regexp.QuoteMeta(service) + `:\s*$`).Match(readFile(t, "azure.yaml")) {
		t.Errorf("azure.yaml's service is not %q, the app's azd-service-name", service)
	}
}

func TestKeyVaultUsesRBACAndKeepsDeletedSecrets(t *testing.T) {
	tpl := loadTemplate(t)
	kv := tpl.one(t, "Microsoft.KeyVault/vaults")
	want(t, "enableRbacAuthorization", at(t, kv.Properties, "enableRbacAuthorization"), true)
	want(t, "enableSoftDelete", at(t, kv.Properties, "enableSoftDelete"), true)
	if _, ok := kv.Properties["accessPolicies"]; ok {
		t.Error("access policies are ignored under RBAC; grant roles instead")
	}
}

func TestApplicationInsightsIsWorkspaceBasedWithEntraIngestion(t *testing.T) {
	tpl := loadTemplate(t)
	tpl.one(t, "Microsoft.OperationalInsights/workspaces")
	ai := tpl.one(t, "Microsoft.Insights/components")
	if ws, _ := at(t, ai.Properties, "WorkspaceResourceId").(string); !strings.Contains(ws, "Microsoft.OperationalInsights/workspaces") {
		t.Errorf("WorkspaceResourceId = %q, want the template's workspace", ws)
	}
	settings := tpl.appSettings(t)
	// Ingestion with the app's identity only, as the README says.
	want(t, "Application Insights DisableLocalAuth", at(t, ai.Properties, "DisableLocalAuth"), true)
	auth, _ := settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"].(string)
	if !strings.Contains(auth, "Authorization=AAD") || !strings.Contains(auth, "reference(variables('identityId')") {
		t.Errorf("local auth is off, so APPLICATIONINSIGHTS_AUTHENTICATION_STRING must name the app's identity; it is %q", auth)
	}
	if _, ok := settings["APPLICATIONINSIGHTS_CONNECTION_STRING"]; !ok {
		t.Error("APPLICATIONINSIGHTS_CONNECTION_STRING is not set: no logs would reach Application Insights")
	}
}

// TestLogSamplingFollowsTheREADME: every stdout line is a billed trace,
// so the template samples successful request lines with LOG_SAMPLE, which
// config.Load must accept, and which must be below 1 by default.
func TestLogSamplingFollowsTheREADME(t *testing.T) {
	tpl := loadTemplate(t)
	settings := tpl.appSettings(t)
	v, ok := tpl.resolve(settings["LOG_SAMPLE"], nil)
	if !ok {
		t.Fatal("LOG_SAMPLE is not set to a value the template decides")
	}
	cfg, err := config.Load(func(name string) string {
		if name == "LOG_SAMPLE" {
			return v
		}
		return ""
	})
	if err != nil {
		t.Fatalf("config.Load refuses the template's LOG_SAMPLE %q: %v", v, err)
	}
	if cfg.LogSample <= 0 || cfg.LogSample >= 1 {
		t.Errorf("default LOG_SAMPLE %q samples %v of successful lines, want a share below 1 and above 0", v, cfg.LogSample)
	}
}

// TestHostTelemetryRecordsNoPath: the Functions host's request telemetry
// would store every request's path, and with it credentials and API keys,
// in Application Insights; the template turns that off, and host.json
// does not turn it back on.
func TestHostTelemetryRecordsNoPath(t *testing.T) {
	tpl := loadTemplate(t)
	var host map[string]any
	if err := json.Unmarshal(readFile(t, "host.json"), &host); err != nil {
		t.Fatal(err)
	}
	for _, setting := range pathSettings {
		v, ok := tpl.resolve(tpl.appSettings(t)[setting], nil)
		if !ok || v != "false" {
			t.Errorf("%s = %q, want false", setting, v)
		}
		// The setting's path, read in host.json: absent, or false.
		var node any = host
		keys := strings.Split(strings.TrimPrefix(setting, "AzureFunctionsJobHost__"), "__")
		for _, k := range keys {
			m, _ := node.(map[string]any)
			if node = m[k]; node == nil {
				break
			}
		}
		if node != nil && node != false {
			t.Errorf("host.json sets %s to %v", strings.Join(keys, "."), node)
		}
	}
	// YARP, which proxies each request, logs "Proxying to {url}" at
	// Information: host.json keeps it to warnings.
	if lvl := at(t, host, "logging", "logLevel", "Yarp"); lvl != "Warning" {
		t.Errorf("host.json logging.logLevel.Yarp = %v, want Warning", lvl)
	}
}

func TestRoleAssignments(t *testing.T) {
	tpl := loadTemplate(t)
	roles, _ := tpl.Variables["roles"].(map[string]any)
	type grant struct{ role, scope, principal string }
	var got []grant
	conditional := map[grant]bool{}
	for _, r := range tpl.Resources {
		if r.Type != "Microsoft.Authorization/roleAssignments" {
			continue
		}
		def, _ := at(t, r.Properties, "roleDefinitionId").(string)
		m := roleRef.FindStringSubmatch(def)
		if m == nil {
			t.Errorf("roleDefinitionId %q is not subscriptionResourceId(..., variables('roles').<name>)", def)
			continue
		}
		guid, _ := roles[m[1]].(string)
		scope := strings.SplitN(strings.TrimPrefix(r.Scope, "[format('"), "/{0}", 2)[0]
		principal, _ := at(t, r.Properties, "principalId").(string)
		if strings.Contains(principal, "reference(variables('identityId')") {
			principal = identityExpr
			want(t, "principalType of the app's identity", at(t, r.Properties, "principalType"), "ServicePrincipal")
		}
		g := grant{guid, scope, principal}
		got = append(got, g)
		conditional[g] = r.Condition == adminCondition
		if !strings.Contains(r.Name, "guid(") {
			t.Errorf("role assignment %q: the name must be a guid() of scope, principal and role, so redeploying finds it", r.Name)
		}
	}
	wanted := []grant{
		{roleStorageBlobDataOwner, "Microsoft.Storage/storageAccounts", identityExpr},
		{roleStorageTableDataContributor, "Microsoft.Storage/storageAccounts", identityExpr},
		{roleKeyVaultSecretsUser, "Microsoft.KeyVault/vaults", identityExpr},
		{roleMonitoringMetricsPublisher, "Microsoft.Insights/components", identityExpr},
		{roleKeyVaultSecretsOfficer, "Microsoft.KeyVault/vaults", adminPrincipalExpr},
		{roleStorageTableDataReader, "Microsoft.Storage/storageAccounts", adminPrincipalExpr},
	}
	sortGrants := func(gs []grant) {
		sort.Slice(gs, func(i, j int) bool { return gs[i].role+gs[i].principal < gs[j].role+gs[j].principal })
	}
	sortGrants(got)
	sortGrants(wanted)
	if !slices.Equal(got, wanted) {
		t.Errorf("role assignments:\n got %v\nwant %v", got, wanted)
	}
	for _, g := range got {
		if g.role == roleStorageQueueDataContributor {
			t.Error("the queue role is granted; the HTTP-only host needs none")
		}
		if admin := g.principal == adminPrincipalExpr; conditional[g] != admin {
			t.Errorf("role %s for %s: conditional on a principal id = %v, want %v", g.role, g.principal, conditional[g], admin)
		}
	}
	if c, _ := tpl.Variables["adminAssignments"].(string); c != "[not(empty(parameters('principalId')))]" {
		t.Errorf("adminAssignments = %q: an empty principalId must skip the administrator's roles", c)
	}
	if d, ok := tpl.Parameters["principalId"].DefaultValue.(string); !ok || d != "" {
		t.Error("principalId must default to empty (the Deploy to Azure button has no signed-in user to pass)")
	}
}

// configSettingNames parses internal/config's sources for the names
// config.Load reads (get("NAME", ...) and getenv("NAME")).
func configSettingNames(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, "internal", "config", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	// get("NAME", def), getenv("NAME"), and helpers called as
	// onOff(get, bad, "NAME", ...) or durationOf(get, bad, "NAME", ...).
	re := regexp.MustCompile(`(?:\bget\(|\bgetenv\(|\bget, bad, )"([A-Za-z_][A-Za-z0-9_]*)"`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			names[m[1]] = true
		}
	}
	// The parse must find what config.Load is known to read, or an
	// empty set would let anything through.
	for _, known := range []string{"ALLOWED_ORIGINS", "KEY_VAULT_NAME", "TOKEN_STORE", "AzureWebJobsStorage__accountName", "LOG_SAMPLE", "CORS_HEADERS"} {
		if !names[known] {
			t.Fatalf("parsing internal/config found no %s: the parse no longer matches how config reads settings", known)
		}
	}
	return names
}

func TestEveryAppSettingIsOneTheProxyOrThePlatformReads(t *testing.T) {
	tpl := loadTemplate(t)
	known := configSettingNames(t)
	for _, n := range platformSettings {
		known[n] = true
	}
	for name := range tpl.appSettings(t) {
		if !known[name] {
			t.Errorf("app setting %s is read by neither config.Load nor the platform (a typo, or a setting that was renamed)", name)
		}
	}
	for _, name := range flexDeprecated {
		if _, ok := tpl.appSettings(t)[name]; ok {
			t.Errorf("app setting %s is not allowed on Flex Consumption", name)
		}
	}
}

// templateEnv is the environment the template gives the handler, with
// stand-ins for the values only Azure knows (reference() results).
func templateEnv(t *testing.T, tpl template, params map[string]any) map[string]string {
	t.Helper()
	azureOnly := map[string]string{
		"AzureWebJobsStorage__clientId":             identityClientIDForTest,
		"MANAGED_IDENTITY_CLIENT_ID":                identityClientIDForTest,
		"APPLICATIONINSIGHTS_CONNECTION_STRING":     appInsightsConnectionForTest,
		"APPLICATIONINSIGHTS_AUTHENTICATION_STRING": appInsightsAuthenticationForTest,
	}
	env := map[string]string{}
	var unresolved []string
	for name, v := range tpl.appSettings(t) {
		if s, ok := tpl.resolve(v, params); ok {
			env[name] = s
			continue
		}
		unresolved = append(unresolved, name)
		env[name] = azureOnly[name]
	}
	sort.Strings(unresolved)
	var stood []string
	for name := range azureOnly {
		stood = append(stood, name)
	}
	sort.Strings(stood)
	if !slices.Equal(unresolved, stood) {
		t.Fatalf("settings only Azure can evaluate are %v; this test stands in for %v: update the stand-ins", unresolved, stood)
	}
	return env
}

// operatorParams are the names an operator (or uniqueString) would give.
func operatorParams() map[string]any {
	return map[string]any{"storageAccountName": storageAccountForTest, "keyVaultName": keyVaultNameForTest}
}

func TestTheTemplatesSettingsLoadAsAnAzureDeployment(t *testing.T) {
	tpl := loadTemplate(t)
	env := templateEnv(t, tpl, operatorParams())
	if env["AzureWebJobsStorage__clientId"] != env["MANAGED_IDENTITY_CLIENT_ID"] {
		t.Error("storage and Key Vault must use the same identity")
	}
	settings := tpl.appSettings(t)
	if settings["AzureWebJobsStorage__clientId"] != settings["MANAGED_IDENTITY_CLIENT_ID"] {
		t.Errorf("AzureWebJobsStorage__clientId %v and MANAGED_IDENTITY_CLIENT_ID %v are different expressions", settings["AzureWebJobsStorage__clientId"], settings["MANAGED_IDENTITY_CLIENT_ID"])
	}
	// What the Functions host adds when it starts the handler.
	env["FUNCTIONS_CUSTOMHANDLER_PORT"] = "41234"
	env["IDENTITY_ENDPOINT"] = "http://localhost:42356/msi/token"
	cfg, err := config.Load(func(name string) string { return env[name] })
	if err != nil {
		t.Fatalf("config.Load refuses the template's settings: %v", err)
	}
	want(t, "token store", cfg.TokenStore, config.TokenStoreTable)
	want(t, "table endpoint", cfg.Storage.ServiceURL, "https://"+storageAccountForTest+".table.core.windows.net")
	want(t, "storage managed identity", cfg.Storage.ManagedIdentity, true)
	want(t, "storage identity", cfg.Storage.ClientID, identityClientIDForTest)
	want(t, "key store", cfg.Keys.Store, config.KeysKeyVault)
	want(t, "vault", cfg.Keys.VaultURL, "https://"+keyVaultNameForTest+".vault.azure.net")
	want(t, "vault identity", cfg.Keys.ClientID, identityClientIDForTest)
	want(t, "allowed origins", cfg.OriginsText, tpl.Parameters["allowedOrigins"].DefaultValue)
	if cfg.Storage.ConnectionString != "" {
		t.Error("the template must not give the handler a storage connection string (shared keys are off)")
	}
}

// TestTheCORSSwitchesAreOnePlaceEach: platformCors alone decides the
// platform's CORS list (with credentials), handlerCorsHeaders alone decides
// CORS_HEADERS, and both default on: on Flex the host answers preflights
// from the platform's list and assigns (never doubles) the allowed origin
// of other answers, while the handler adds what the platform cannot
// (docs/functions-host.md, "CORS on Flex").
func TestTheCORSSwitchesAreOnePlaceEach(t *testing.T) {
	tpl := loadTemplate(t)
	if tpl.Parameters[platformCorsParam].Type != "bool" {
		t.Fatalf("parameter %s must be a bool", platformCorsParam)
	}
	site := tpl.one(t, "Microsoft.Web/sites")
	cors := at(t, site.Properties, "siteConfig", "cors")
	// Credentials whenever the platform answers, except for a lone "*",
	// with which the platform refuses them (and the deployment would fail).
	want(t, "cors.supportCredentials", at(t, cors, "supportCredentials"), "[and(parameters('"+platformCorsParam+"'), not(contains(variables('platformCorsOrigins'), '*')))]")
	origins, _ := at(t, cors, "allowedOrigins").(string)
	m := variableRef.FindStringSubmatch(origins)
	if m == nil {
		t.Fatalf("cors.allowedOrigins %q is not a variable", origins)
	}
	want(t, "platform CORS origins", tpl.Variables[m[1]], "[if(parameters('"+platformCorsParam+"'), union(variables('originList'), variables('keyOriginList')), createArray())]")
	want(t, "keyOriginList", tpl.Variables["keyOriginList"], "[if(empty(trim(parameters('keyOrigins'))), createArray(), split(replace(parameters('keyOrigins'), ' ', ''), ','))]")
	for name, v := range tpl.appSettings(t) {
		if s, _ := v.(string); strings.Contains(s, "keyOrigins") {
			t.Errorf("app setting %s uses keyOrigins, which are for the platform's CORS list alone", name)
		}
	}
	want(t, "originList", tpl.Variables["originList"], "[split(replace(parameters('allowedOrigins'), ' ', ''), ',')]")

	settings := tpl.appSettings(t)
	want(t, "ALLOWED_ORIGINS", settings[allowedOriginsSetting], "[parameters('allowedOrigins')]")
	if tpl.Parameters[handlerCorsParam].Type != "bool" {
		t.Fatalf("parameter %s must be a bool", handlerCorsParam)
	}
	for _, tc := range []struct {
		platform, handler bool
	}{{true, true}, {true, false}, {false, true}, {false, false}} {
		params := operatorParams()
		params[platformCorsParam] = tc.platform
		params[handlerCorsParam] = tc.handler
		env := templateEnv(t, tpl, params)
		cfg, err := config.Load(func(name string) string { return env[name] })
		if err != nil {
			t.Fatal(err)
		}
		if cfg.CORSHeaders != tc.handler {
			t.Errorf("%s=%v, %s=%v: the handler's CORS headers are %v (%s=%q)", platformCorsParam, tc.platform, handlerCorsParam, tc.handler, cfg.CORSHeaders, corsHeadersSetting, env[corsHeadersSetting])
		}
	}
	for _, name := range []string{platformCorsParam, handlerCorsParam} {
		if d, _ := tpl.Parameters[name].DefaultValue.(bool); !d {
			t.Errorf("%s defaults to false; docs/functions-host.md has both on for Flex", name)
		}
	}
}

func TestOutputs(t *testing.T) {
	tpl := loadTemplate(t)
	for _, name := range []string{"appName", "defaultHostName", "keyVaultName", "identityClientId"} {
		if _, ok := tpl.Outputs[name]; !ok {
			t.Errorf("output %s missing", name)
		}
	}
}

var (
	bicepModule = regexp.MustCompile(`(?s)module\s+(\w+)\s+'([^']+)'\s*=\s*\{(.*?)\n\}`)
	bicepParams = regexp.MustCompile(`(?s)params:\s*\{(.*?)\n\s*\}`)
	bicepKey    = regexp.MustCompile(`(?m)^\s*'?([\w-]+)'?\s*:`)
	bicepParam  = regexp.MustCompile(`(?m)^param\s+(\w+)\s+\w+(\s*=)?`)
	bicepOutRef = regexp.MustCompile(`(\w+)\.outputs\.(\w+)`)
)

func TestMainBicepOnlyWrapsTheTemplate(t *testing.T) {
	tpl := loadTemplate(t)
	src := string(readFile(t, "infra/main.bicep"))
	mods := bicepModule.FindAllStringSubmatch(src, -1)
	if len(mods) != 1 || mods[0][2] != templateFile {
		t.Fatalf("main.bicep must have exactly one module, '%s'; found %v", templateFile, mods)
	}
	if n := len(regexp.MustCompile(`(?m)^resource\s`).FindAllString(src, -1)); n != 1 {
		t.Error("main.bicep declares resources besides the resource group: put them in azuredeploy.json, the tested source")
	}
	pm := bicepParams.FindStringSubmatch(mods[0][3])
	if pm == nil {
		t.Fatal("the module passes no params")
	}
	passed := map[string]bool{}
	for _, k := range bicepKey.FindAllStringSubmatch(pm[1], -1) {
		passed[k[1]] = true
		if _, ok := tpl.Parameters[k[1]]; !ok {
			t.Errorf("main.bicep passes %s, which azuredeploy.json does not declare", k[1])
		}
	}
	if len(passed) == 0 {
		t.Fatal("found no params in main.bicep's module")
	}
	for name, p := range tpl.Parameters {
		if p.DefaultValue == nil && !passed[name] {
			t.Errorf("azuredeploy.json's %s has no default and main.bicep does not pass it", name)
		}
	}
	for _, ref := range bicepOutRef.FindAllStringSubmatch(src, -1) {
		if ref[1] != mods[0][1] {
			continue
		}
		if _, ok := tpl.Outputs[ref[2]]; !ok {
			t.Errorf("main.bicep reads output %s, which azuredeploy.json does not have", ref[2])
		}
	}

	// main.parameters.json feeds main.bicep's parameters from azd's environment.
	declared := map[string]bool{}
	required := map[string]bool{}
	for _, m := range bicepParam.FindAllStringSubmatch(src, -1) {
		declared[m[1]] = true
		required[m[1]] = m[2] == ""
	}
	var pf struct {
		Parameters map[string]struct {
			Value any `json:"value"`
		} `json:"parameters"`
	}
	if err := json.Unmarshal(readFile(t, "infra/main.parameters.json"), &pf); err != nil {
		t.Fatal(err)
	}
	for name := range pf.Parameters {
		if !declared[name] {
			t.Errorf("main.parameters.json sets %s, which main.bicep does not declare", name)
		}
	}
	for name, req := range required {
		if _, ok := pf.Parameters[name]; req && !ok {
			t.Errorf("main.bicep's %s is required and main.parameters.json does not set it", name)
		}
	}
	for name, env := range map[string]string{"environmentName": "${AZURE_ENV_NAME}", "location": "${AZURE_LOCATION}", "principalId": "${AZURE_PRINCIPAL_ID}"} {
		want(t, "main.parameters.json "+name, pf.Parameters[name].Value, env)
	}
}

// azureYAML checks azure.yaml's fixed lines and returns its posix
// prepackage hook's build command and the members it zips.
func azureYAML(t *testing.T) (string, []string) {
	t.Helper()
	src := string(readFile(t, "azure.yaml"))
	for _, line := range []string{"host: function", "language: custom", "dist: " + deployZip, "path: infra", "module: main"} {
		if !regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(line) + `\s*$`).MatchString(src) {
			t.Errorf("azure.yaml lacks %q", line)
		}
	}
	m := regexp.MustCompile(`(?s)prepackage:\s*\n\s*posix:.*?run:\s*(.*?)\n`).FindStringSubmatch(src)
	if m == nil {
		t.Fatal("azure.yaml has no posix prepackage hook")
	}
	z := regexp.MustCompile(`zip\s+` + regexp.QuoteMeta(deployZip) + `\s+([^&;|]+)`).FindStringSubmatch(m[1])
	if z == nil {
		t.Fatalf("the prepackage hook %q does not zip %s", m[1], deployZip)
	}
	return m[1], strings.Fields(z[1])
}

func TestAzureYAMLBuildsWhatVSCodeBuildsAndShipsWhatTheHostRuns(t *testing.T) {
	run, members := azureYAML(t)
	if _, err := os.Stat(filepath.Join(repoRoot, "infra", "main.bicep")); err != nil {
		t.Error(err)
	}
	var tasks struct {
		Tasks []struct {
			Label   string `json:"label"`
			Command string `json:"command"`
			Options struct {
				Env map[string]string `json:"env"`
			} `json:"options"`
		} `json:"tasks"`
	}
	if err := json.Unmarshal(readFile(t, ".vscode/tasks.json"), &tasks); err != nil {
		t.Fatal(err)
	}
	var settings map[string]any
	if err := json.Unmarshal(readFile(t, ".vscode/settings.json"), &settings); err != nil {
		t.Fatal(err)
	}
	preDeploy, _ := settings["azureFunctions.preDeployTask"].(string)
	found := false
	for _, task := range tasks.Tasks {
		if task.Label != preDeploy {
			continue
		}
		found = true
		if !strings.Contains(run, task.Command) {
			t.Errorf("azure.yaml builds with %q; VS Code's pre-deploy task with %q: keep them one build", run, task.Command)
		}
		for k, v := range task.Options.Env {
			if !strings.Contains(run, k+"="+v) {
				t.Errorf("azure.yaml's build lacks %s=%s (VS Code's pre-deploy task sets it)", k, v)
			}
		}
	}
	if !found {
		t.Fatalf("no task named %q (azureFunctions.preDeployTask)", preDeploy)
	}

	var host struct {
		CustomHandler struct {
			Description struct {
				DefaultExecutablePath string `json:"defaultExecutablePath"`
			} `json:"description"`
		} `json:"customHandler"`
	}
	if err := json.Unmarshal(readFile(t, "host.json"), &host); err != nil {
		t.Fatal(err)
	}
	want(t, "host.json executable", host.CustomHandler.Description.DefaultExecutablePath, hostExecutable)
	if !strings.Contains(run, "-o "+hostExecutable+" ") {
		t.Errorf("the hook does not build %s", hostExecutable)
	}
	wanted := append([]string{hostExecutable, "host.json"}, functionFiles(t)...)
	sort.Strings(wanted)
	sort.Strings(members)
	if !slices.Equal(members, wanted) {
		t.Errorf("the deployment zip holds %v, want %v (the executable, host.json and every function.json)", members, wanted)
	}
}

// functionFiles are the function folders' function.json files.
func functionFiles(t *testing.T) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(repoRoot, "*", "function.json"))
	if err != nil || len(matches) == 0 {
		t.Fatalf("no */function.json: %v", err)
	}
	var out []string
	for _, m := range matches {
		rel, _ := filepath.Rel(repoRoot, m)
		out = append(out, filepath.ToSlash(rel))
	}
	return out
}

// funcignored reports whether .funcignore's patterns (gitignore-style,
// as Core Tools and the VS Code extension read them: a pattern without a
// slash matches a name at any depth) leave rel out of the package.
func funcignored(patterns []string, rel string) bool {
	parts := strings.Split(rel, "/")
	for _, p := range patterns {
		p = strings.TrimSuffix(p, "/")
		if strings.Contains(p, "/") {
			if ok, _ := path.Match(strings.TrimPrefix(p, "/"), rel); ok {
				return true
			}
			continue
		}
		for _, part := range parts {
			if ok, _ := path.Match(p, part); ok {
				return true
			}
		}
	}
	return false
}

// TestFuncignoreShipsOnlyWhatTheHostRuns: VS Code's "Deploy to Function
// App" packages the folder minus .funcignore; of the repository's files
// (and the built handler), only the executable, host.json and the
// function folders may go.
func TestFuncignoreShipsOnlyWhatTheHostRuns(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		requiretools.Missing(t, "git is not installed: cannot list the repository's files")
	}
	var patterns []string
	for _, line := range strings.Split(string(readFile(t, ".funcignore")), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, line)
		}
	}
	cmd := exec.Command("git", "ls-files", "--cached", "--others", "--exclude-standard")
	cmd.Dir = repoRoot
	out, err := cmd.Output()
	if err != nil {
		requiretools.Missing(t, "git ls-files: %v (not a checkout?)", err)
	}
	files := strings.Fields(string(out))
	// What a build leaves behind, gitignored but in the folder VS Code packages.
	files = append(files, hostExecutable, "hexprox", deployZip, "infra/x.test", ".azure/dev/.env")
	var kept []string
	for _, f := range files {
		if !funcignored(patterns, f) {
			kept = append(kept, f)
		}
	}
	wanted := append([]string{hostExecutable, "host.json"}, functionFiles(t)...)
	sort.Strings(kept)
	sort.Strings(wanted)
	if !slices.Equal(kept, wanted) {
		t.Errorf("the package would hold %v, want only %v", kept, wanted)
	}
}
