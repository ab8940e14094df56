package keyvault

import (
	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// NewCredential returns the identity the store reads the vault with.
// With managed set (on Azure, where App Service and Functions set
// IDENTITY_ENDPOINT, older hosts MSI_ENDPOINT: config.Keys.Managed) it is
// the app's managed identity: the user-assigned one whose client ID is
// clientID (MANAGED_IDENTITY_CLIENT_ID, as in the original HexProx), or
// the system-assigned one when clientID is empty. Elsewhere it is
// DefaultAzureCredential: the developer's or admin's own login (az
// login, azd, environment variables, VS Code...). No token is asked for
// until the first vault call.
func NewCredential(clientID string, managed bool) (azcore.TokenCredential, error) {
	if managed {
		var o azidentity.ManagedIdentityCredentialOptions
		if clientID != "" {
			o.ID = azidentity.ClientID(clientID)
		}
		return azidentity.NewManagedIdentityCredential(&o)
	}
	var o azidentity.DefaultAzureCredentialOptions
	return azidentity.NewDefaultAzureCredential(&o)
}
