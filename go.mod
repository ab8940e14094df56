module github.com/hexprox/hexprox

go 1.26.8

require (
	golang.org/x/oauth2 v0.37.0
	golang.org/x/sync v0.24.0
)
