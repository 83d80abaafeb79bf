// Package restapi is the REST storage protocol that cairn clients and
// unmodified restic clients speak to a cairn server: restic's REST backend
// protocol, versions 1 and 2. It holds what both sides must agree on, so
// the client (internal/backend/rest) and the server (internal/server)
// cannot drift apart:
//
//   - ParsePath, the strict parser of request paths: {repo}/ (creation with
//     ?create=true), {repo}/config, {repo}/{type}/ (listing) and
//     {repo}/{type}/{name} (one file). It accepts only plain, unescaped
//     paths: any percent escape, empty, "." or ".." component, backslash,
//     NUL or control byte, unknown type, or a name that is not 64
//     lowercase hex digits is refused, so no path can reach outside the
//     repository it names or alias another file. Repository components are
//     letters, digits, '_', '-', '.' and '@', at most MaxRepoDepth of them.
//   - the list formats (v1: array of names; v2: array of {name, size})
//     chosen by the Accept media type, and the exact Content-Type strings
//     restic compares for equality;
//   - the mapping between backend sentinel errors and HTTP status codes,
//     plus the X-Cairn-Error header that lets a cairn client recover the
//     exact sentinel where restic's status codes are ambiguous (403 means
//     "exists" to restic on POST, and "refused" elsewhere);
//   - the Range header forms restic sends.
//
// Status codes follow restic 0.14 and rest-server: 200 on success (206 for
// ranged reads), 404 for anything missing or malformed, 403 for overwrites
// and refused deletes, 400 when a body does not hash to its name, 416 for
// an unsatisfiable range, 507 for a full quota or disk.
package restapi
