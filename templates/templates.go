package templates

import "embed"

// FS holds every page (*.html), the shared layout and partials, and static/.
//
//go:embed *.html static
var FS embed.FS
