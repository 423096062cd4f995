// Package live streams a show to its fans: per-show stream keys (stored hashed), the RTMP ingest
// that remuxes H.264 and AAC into fMP4 HLS segments with a SHA-256 list, the streams and their
// statistics, the donation overlay's feed, and the recording handed to publishing as an episode
// when a stream ends. It owns the live_ tables; it reads donations through billing, publishes
// through publishing and links a stream's donations to its episode through billing's functions.
// It imports billing, catalog, money and publishing.
package live
