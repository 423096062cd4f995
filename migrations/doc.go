// Package migrations holds the numbered SQL files that define the schema and applies them. It
// imports no package of Fanseed's; each table's owner is named in its package's doc.go.
package migrations
