package keyadmin

const usageNew = `handler keys new --org ORG --contact CONTACT [options]
  Creates a key and prints it with its WMTS, WMS and about URLs.
  The Hexagon client secrets are read from a prompt, or from stdin, one
  line per credential set, when stdin is not a terminal; never from a flag.
  Client ids missing from --client-id are read first, before each secret.

  --org ORG                    organisation (required)
  --contact CONTACT            who key holders contact (required)
  --client-id ID               a Hexagon client id; repeat for several sets
  --sets N                     number of credential sets (default: the
                               number of --client-id, or 1)
  --copy-credentials-from KEY  reuse another key's credential sets
  --origin ORIGIN              browser origin for this key (repeatable),
                               as in ALLOWED_ORIGINS: https://*.example.gov;
                               given, they are the only origins whose web
                               maps the key serves (ALLOWED_ORIGINS no
                               longer applies to it)
  --expires WHEN               2026-12-31, an RFC 3339 time, or 90d / 720h
  --not-before WHEN            the key serves only from then
  --note TEXT                  a note for admins
  --rate N --burst N           requests per second (and burst) per instance
  --daily N                    requests per UTC day across all instances
  --redirect                   let desktop tiles and maps be redirected to
                               Hexagon with its token, as credential URLs
                               are. This gives the key holder Hexagon's
                               token: it keeps working without the proxy,
                               unlimited and uncounted, after the key is
                               revoked, for as long as anyone uses the
                               credential set. Off (the default), the proxy
                               serves everything itself.
  --base-url URL               the proxy's address (default PUBLIC_BASE_URL,
                               or http://localhost:8080)

  example:
    read -rs SECRET && printf '%s\n' "$SECRET" | \
      handler keys new --org "Marin County" --contact gis@marin.example \
        --client-id abc123 --origin https://marin.maps.arcgis.com \
        --expires 2026-12-31 --base-url https://hexprox.azurewebsites.net
`

const usageList = `handler keys list
  A table of every key: its prefix (never the whole key), organisation,
  contact, number of credential sets, origins, enabled, status, expiry and
  creation time. Never a secret.

  example:
    handler keys list
`

const usageShow = `handler keys show KEY [--base-url URL]
  One key's details and its URLs. KEY may be the whole key or a prefix
  that only one key has (as list shows it).

  example:
    handler keys show hxpk-Ab3dE
`

const usageRevoke = `handler keys revoke KEY
  Disables the key: its URLs answer 403 on every instance within about
  10 s (each instance lists the store's keys every 10 s). In Key Vault
  this is the secret's enabled attribute; disabling it in the portal
  works as well.

  example:
    handler keys revoke hxpk-Ab3dE
`

const usageEnable = `handler keys enable KEY
  Enables a revoked key again.

  example:
    handler keys enable hxpk-Ab3dE
`

const usageSet = `handler keys set KEY [options]
  Changes a key's settings; what is not given stays as it is.

  --expires WHEN|none          expiry (2026-12-31, RFC 3339, 90d); none clears
  --not-before WHEN|none       start of validity; none clears
  --origin ORIGIN|none         replaces the key's origins, the only ones
                               its web maps may be on (repeatable); none
                               clears them: ALLOWED_ORIGINS applies again
  --org ORG --contact CONTACT --note TEXT
  --rate N --burst N --daily N limits; 0 removes one
  --redirect[=false]           let desktop tiles be redirected to Hexagon
                               with its token (see keys new --help: it hands
                               the key holder a token the key cannot revoke)

  example:
    handler keys set hxpk-Ab3dE --expires 2027-06-30 --origin https://*.marin.gov
`

const usageReplace = `handler keys replace-credential --client-id OLD [--new-client-id NEW]
  Replaces a Hexagon credential in every key that uses it, so that a
  rotated client secret reaches all of them without re-issuing any URL.
  The new client secret is read from a prompt, or from stdin when stdin
  is not a terminal. Prints which keys changed (prefix and organisation).
  Revoked keys in Key Vault cannot be read, so they are not changed; they
  are counted in a warning.

  example:
    read -rs SECRET && printf '%s\n' "$SECRET" | \
      handler keys replace-credential --client-id abc123
`

const usage = `handler keys: administer HexProx API keys (the /v2 URLs).

The store is chosen like the server's: KEY_STORE=keyvault with
KEY_VAULT_URL (or KEY_VAULT_NAME), using your own Azure login (az login),
or KEY_STORE=file with KEYS_FILE. --vault URL or --file PATH, before or
after the subcommand, override them. Key Vault needs the
Key Vault Secrets Officer role.

Subcommands:

` + usageNew + `
` + usageList + `
` + usageShow + `
` + usageRevoke + `
` + usageEnable + `
` + usageSet + `
` + usageReplace + `
handler keys help
  This text. Every subcommand also takes -h.
`
