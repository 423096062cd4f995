// Package catalog holds who publishes and what: accounts and their sessions and one-time links,
// shows and episodes, and the rows of uploads. It owns accounts, sessions, login_devices,
// login_throttle, account_tokens, api_tokens, api_idempotency, shows, episodes, uploads and upload_locks. It
// imports only money of Fanseed's packages.
package catalog
