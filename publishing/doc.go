// Package publishing turns an upload into a published episode: the resumable upload store (its
// files, hashed as the bytes arrive), expiry of abandoned uploads, the Publisher that builds and
// stores the torrent, and the fleet's Episodes hook. It owns no table: it changes catalog's
// through catalog and seeding's through seeding, in one transaction. It imports catalog, seeding
// and money.
package publishing
