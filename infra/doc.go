// Package infra holds HexProx's Azure infrastructure: azuredeploy.json
// (an ARM template, the one source of truth, also behind the README's
// Deploy to Azure button), main.bicep (azd's entry point, which only wraps
// it) and main.parameters.json. No Go code lives here; the tests check
// that the template provisions what the proxy and the Functions host need
// and writes only settings the proxy or the platform reads, without Azure.
package infra
