// Package api is Fanseed over HTTP: the creator portal, fan pages, the JSON API, and the
// endpoints that delegate to billing (Stripe webhooks), publishing (uploads) and seeding (tracker,
// web seed). It is the only package that imports chi or writes HTTP responses, and owns no table.
// It may import billing, catalog, mail, money, notify, publishing, seeding and templates.
package api
