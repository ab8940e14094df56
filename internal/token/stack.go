package token

import (
	"context"
	"log/slog"
	"time"

	"golang.org/x/oauth2"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/provider"
	"github.com/hexprox/hexprox/internal/tokenstore"
)

// Stack makes a credential's whole token stack and returns its top, the
// Cached source every request reads. ctx must live as long as the server.
type Stack func(ctx context.Context, cred credential.Credential) *Cached

// StackOptions say how every credential's stack is built.
type StackOptions struct {
	// Endpoint is Hexagon's token endpoint, at the bottom. Required.
	Endpoint *Endpoint
	// Store is what instances share tokens through (TOKEN_STORE=table),
	// with Shared's options (whose HashKey also keys the credential
	// fingerprints in log lines); nil (TOKEN_STORE=memory) means no shared
	// layer, since one instance has nothing to share and Cached holds its
	// token.
	Store  tokenstore.Store
	Shared SharedOptions
	// RefusalTTL is how long Cached remembers a refusal (see NewCached).
	RefusalTTL time.Duration
	// Now is Cached's clock; nil means time.Now.
	Now func() time.Time
	// Log receives each Cached source's records, with the credential's
	// fingerprint; nil means slog.Default().
	Log *slog.Logger
	// Provider, if not nil, returns the bottom of the stack of another
	// provider's set that is not a static key (its grant: token.Grant).
	// A static key is its own token. A set that is not a key, without a
	// grant (Provider nil or returning nil), fails with an internal error:
	// its secret is never sent as if it were a key.
	Provider func(ctx context.Context, cred credential.Credential) oauth2.TokenSource
}

// NewStack returns the Stack o describes: the one place the layers are
// chosen and composed, Cached(Endpoint) or Cached(Shared(Endpoint)) for
// Hexagon's credentials and another provider's logins, Cached(the key)
// for another provider's static key. All credentials' shared layers
// share one StoreHealth and one lease owner name.
func NewStack(o StackOptions) Stack {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	// shared puts the table between a fetching source and Cached, when
	// there is a table: one token per credential for every instance.
	shared := func(ctx context.Context, cred credential.Credential, src oauth2.TokenSource) oauth2.TokenSource {
		return src
	}
	if o.Store != nil {
		so := o.Shared
		if so.Owner == "" {
			so.Owner = NewOwner()
		}
		if so.Health == nil {
			so.Health = &StoreHealth{Log: so.Log}
		}
		shared = func(ctx context.Context, cred credential.Credential, src oauth2.TokenSource) oauth2.TokenSource {
			return NewShared(ctx, cred, src, o.Store, so)
		}
	}
	return func(ctx context.Context, cred credential.Credential) *Cached {
		var src oauth2.TokenSource
		switch {
		case cred.Provider == "":
			src = shared(ctx, cred, o.Endpoint.Source(ctx, cred))
		case !cred.IsKey():
			var grant oauth2.TokenSource
			if o.Provider != nil {
				grant = o.Provider(ctx, cred)
			}
			if grant == nil { // never send a password or secret as if it were a key
				grant = noGrant
			}
			src = shared(ctx, cred, grant) // a grant's token, shared as Hexagon's are
		}
		if src == nil {
			// Another provider's static key is its own token: nothing to
			// fetch, renew or share. Typed as a key, so that the profile
			// places it as one and a refusal of it is final (the server's
			// keyTokens.Invalidate: a retry would send the same key).
			src = oauth2.StaticTokenSource(&oauth2.Token{AccessToken: cred.Secret, TokenType: provider.KeyTokenType})
		}
		return NewCached(src, o.RefusalTTL, o.Now, o.Log.With("cred", cred.Fingerprint(o.Shared.HashKey)))
	}
}

// failing is a token source that always fails with err.
type failing struct{ err error }

func (f failing) Token() (*oauth2.Token, error) { return nil, f.err }
