package keyvault

import (
	"os"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// NewCredential returns the identity the store reads the vault with.
// On Azure (App Service and Functions set IDENTITY_ENDPOINT, older hosts
// MSI_ENDPOINT) it is the app's managed identity: the user-assigned one
// whose client ID is clientID (MANAGED_IDENTITY_CLIENT_ID, as in the
// original HexProx), or the system-assigned one when clientID is empty.
// Elsewhere it is DefaultAzureCredential: the developer's or admin's own
// login (az login, azd, environment variables, VS Code...). No token is
// asked for until the first vault call.
func NewCredential(clientID string) (azcore.TokenCredential, error) {
	return newCredential(os.Getenv, clientID)
}

func newCredential(getenv func(string) string, clientID string) (azcore.TokenCredential, error) {
	if getenv("IDENTITY_ENDPOINT") != "" || getenv("MSI_ENDPOINT") != "" {
		var o azidentity.ManagedIdentityCredentialOptions
		if clientID != "" {
			o.ID = azidentity.ClientID(clientID)
		}
		return azidentity.NewManagedIdentityCredential(&o)
	}
	var o azidentity.DefaultAzureCredentialOptions
	return azidentity.NewDefaultAzureCredential(&o)
}
