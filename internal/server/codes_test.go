package server

import "github.com/cairnbackup/cairn/internal/server/verify"

// Validation's refusal codes (package verify), as the tests name them.
const (
	codeInvalid  = verify.CodeInvalid
	codeSequence = verify.CodeSequence
	codeSigner   = verify.CodeSigner
	codeMissing  = verify.CodeMissing
)
