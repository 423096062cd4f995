// Package templates holds the HTML templates and static assets, embedded in the binary. It owns
// no table and imports no package of Fanseed's.
package templates
