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
  --endpoint orders            use Hexagon's batch services (/orders/wmts,
                               /orders/wms) for bulk and machine-learning
                               downloads: a lower rate limit, whose 429s
                               reach the key holder with Retry-After
                               (default: streaming, for interactive use)
  --provider NAME              hexagon (the default), planet, nearmap,
                               vexcel, maxar, or a profile of the
                               operator's PROVIDERS_FILE: for Planet,
                               Nearmap, Maxar and a "static" profile each
                               set is a key, for Vexcel a username and
                               password, for an "oauth2" profile a client
                               id and secret; ids and usernames are read
                               as text, secrets at the no-echo prompt. Its
                               tiles always go through the proxy, and a
                               credential of a provider whose terms
                               license per organisation (Planet, Nearmap,
                               Maxar, a profile with a licence note)
                               shared with another organisation is
                               warned about
  --login                      with --provider maxar: each set is a
                               username and password (Maxar's password
                               grant) instead of an API key
  --key-expires WHEN           the end of each provider key, as its
                               provider set it (2026-12-31, an RFC 3339
                               time, or 180d): list and show warn 14 days
                               before it, as the server's log does. Maxar
                               keys live at most 180 days: without it, new
                               warns that nothing will announce the end
  --no-check                   save without asking the provider whether it
                               accepts the credentials (offline); by
                               default each set is checked once (Hexagon's
                               at HEXAGON_URL's token endpoint, a key by a
                               capabilities request, a login or client by
                               its token endpoint), and a refused set
                               saves nothing
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
    handler keys new --provider maxar --key-expires 2026-12-31 \
      --org "Marin County" --contact gis@marin.example
`

const usageList = `handler keys list
  A table of every key: its prefix (never the whole key), its
  fingerprint (the key's name in logs and usage reports), organisation,
  contact, number of credential sets, upstream (hexagon, hexagon/orders,
  planet, nearmap, vexcel), origins, enabled, status, expiry and creation
  time.
  Never a secret. Warns, on stderr after the table, of another
  provider's credential shared between organisations, and of every key
  in use whose provider key (set by --key-expires) ends within 14 days
  or has ended, with the replace-credential command that replaces it.

  example:
    handler keys list
`

const usageShow = `handler keys show KEY [--base-url URL]
  One key's details and its URLs, and when each of another provider's
  keys behind it ends ("Key 1 ends: 2027-06-01 (in 180 days)"), never
  the key itself. KEY, here and in every command, may be
  the whole key, a prefix of at least 8 characters that only one key has
  (as list shows it), or the key's fingerprint (as logs and usage
  reports show it), in any case.

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
  --endpoint streaming|orders  Hexagon's interactive or batch services
  --redirect[=false]           let desktop tiles be redirected to Hexagon
                               with its token (see keys new --help: it hands
                               the key holder a token the key cannot revoke)

  example:
    handler keys set hxpk-Ab3dE --expires 2027-06-30 --origin https://*.marin.gov
`

const usageReplace = `handler keys replace-credential --client-id OLD [--new-client-id NEW]
       handler keys replace-credential --provider NAME [--key-expires WHEN]
  Replaces an upstream credential in every key that uses it, so that a
  rotated client secret, password or provider key reaches all of them
  without re-issuing any URL. Secrets are read from a prompt, or from
  stdin (one line each) when stdin is not a terminal. Prints which keys
  changed (prefix and organisation).
  Revoked keys in Key Vault cannot be read, so they are not changed; they
  are counted in a warning. The new credential is checked with its
  provider first (see keys new); --no-check skips that.

  --client-id OLD        the Hexagon client id (or, with --provider, the
                         username or client id) whose secret changes
  --new-client-id NEW    its new id, when that changes too
  --provider NAME        another provider's sets (default: hexagon);
                         without --client-id, a provider's key: the old
                         key is read first, then the new one
  --key-expires WHEN     the new key's end, as its provider set it
                         (2027-06-01, an RFC 3339 time, or 180d); type
                         the same key as old and new to record the end
                         of a key saved without one

  example:
    read -rs SECRET && printf '%s\n' "$SECRET" | \
      handler keys replace-credential --client-id abc123
    handler keys replace-credential --provider maxar --key-expires 180d
    handler keys replace-credential --provider vexcel --client-id gis@marin.example
`

const usageRotate = `handler keys rotate KEY [--grace 7d] [--base-url URL]
  Issues a new key with KEY's record (organisation, contact, credential
  sets, origins, limits, endpoint) and prints its URLs; KEY keeps serving
  for the grace period, then expires, so that its holders can move to
  the new URLs without a gap. show says which key replaced which; both
  count under the same organisation.

  --grace WHEN     how long the old key keeps serving: 7d (the default),
                   48h, a date, or 0 to end it now
  --expires WHEN   the new key's expiry (2027-12-31, 365d; none for no
                   end); by default the old key's
  --base-url URL   the proxy's address (default PUBLIC_BASE_URL, or
                   http://localhost:8080)

  example:
    handler keys rotate c005b740 --grace 14d --expires 365d
`

const usage = `handler keys: administer HexProx API keys (the /v2 URLs).

The store is chosen like the server's: KEY_STORE=keyvault with
KEY_VAULT_URL (or KEY_VAULT_NAME), using your own Azure login (az login),
or KEY_STORE=file with KEYS_FILE. --vault URL or --file PATH, before or
after the subcommand, override them. Key Vault needs the
Key Vault Secrets Officer role. A KEY is the key, a prefix of it (8
characters at least, as list shows) or its fingerprint (as logs and
handler usage --by key show), in any case. New credentials are checked
with Hexagon (HEXAGON_URL), or with the provider the settings point to
(PROVIDER_{NAME}_{ROLE}_URL, PROVIDERS_FILE), before they are saved;
fingerprints match the server's when TOKEN_HASH_KEY is set as the server
has it.

Subcommands:

` + usageNew + `
` + usageList + `
` + usageShow + `
` + usageRevoke + `
` + usageEnable + `
` + usageSet + `
` + usageReplace + `
` + usageRotate + `
handler keys help
  This text. Every subcommand also takes -h.
`
