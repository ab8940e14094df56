// azd's entry point (azure.yaml: infra/main). It only makes the resource
// group and hands everything else to azuredeploy.json, the one tested
// source of the infrastructure (infra/infra_test.go), which the README's
// Deploy to Azure button also opens.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('The azd environment name (AZURE_ENV_NAME): names the resource group and tags every resource.')
param environmentName string

@minLength(1)
@description('Region of every resource (AZURE_LOCATION); it must offer the Flex Consumption plan.')
param location string

@description('Object id of the key administrator (AZURE_PRINCIPAL_ID, the signed-in azd user): Key Vault Secrets Officer and Storage Table Data Reader. Empty skips both.')
param principalId string = ''

@description('ALLOWED_ORIGINS: browser origins served, comma-separated.')
param allowedOrigins string = 'https://*.arcgis.com'

@description('More origins for the platform\'s CORS list alone (API keys\' own origins), comma-separated.')
param keyOrigins string = ''

@description('The resource group; empty names it rg-<environmentName>.')
param resourceGroupName string = ''

var tags = { 'azd-env-name': environmentName }

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : 'rg-${environmentName}'
  location: location
  tags: tags
}

module app 'azuredeploy.json' = {
  name: 'hexprox'
  scope: rg
  params: {
    location: location
    allowedOrigins: allowedOrigins
    keyOrigins: keyOrigins
    principalId: principalId
    serviceName: 'api'
    tags: tags
  }
}

output AZURE_LOCATION string = location
output AZURE_RESOURCE_GROUP string = rg.name
output FUNCTION_APP_NAME string = app.outputs.appName
output SERVICE_API_URI string = 'https://${app.outputs.defaultHostName}'
output KEY_VAULT_NAME string = app.outputs.keyVaultName
output STORAGE_ACCOUNT_NAME string = app.outputs.storageAccountName
output MANAGED_IDENTITY_CLIENT_ID string = app.outputs.identityClientId
