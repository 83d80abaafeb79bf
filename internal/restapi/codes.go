package restapi

// Error codes in HeaderError of a cairn server's own refusals, beyond
// those of protocol.go: what a client may see, so it can tell one refusal
// from another.
const (
	// CodeBadMethod: a method outside GET, HEAD, POST, DELETE (405).
	CodeBadMethod = "bad-method"
	// CodeAuthLimited: too many failed logins from the source (429).
	CodeAuthLimited = "auth-rate-limited"
	// CodeSlowBody: a body below the server's minimum rate (408).
	CodeSlowBody = "slow-body"
	// CodeTooManyUploads: the client's uploads in progress are at the
	// server's cap (429).
	CodeTooManyUploads = "too-many-uploads"
	// CodeTooManyRepos: the client has as many repositories as the server
	// allows (403).
	CodeTooManyRepos = "too-many-repositories"
	// CodeNotCoordinator: another server coordinates the repository (503
	// with Retry-After).
	CodeNotCoordinator = "not-coordinator"
	// Upload validation (R15): an object that is malformed or not sealed
	// to the server; unsigned, mis-signed or signed by a key not in the
	// roster; referencing what is not stored; a host label not bound to
	// its signer.
	CodeInvalidObject  = "invalid-object"
	CodeBadSignature   = "bad-signature"
	CodeMissingObjects = "missing-objects"
	CodeBadIdentity    = "bad-identity"
)
