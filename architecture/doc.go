// Package architecture holds no code: its test checks that every package of Fanseed imports only
// the packages of Fanseed its place in the layering allows (the table in architecture_test.go,
// described in README's Architecture section), and that only api imports chi.
package architecture
