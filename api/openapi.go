package api

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/fanseed/fanseed/catalog"
)

// apiOperation is one route of the JSON API as the OpenAPI document describes it. The paths
// are chi's patterns ({showID}), which are OpenAPI's too.
type apiOperation struct {
	method, path, id, summary string
	scope                     string // the token scope it needs; "" for none
	list                      bool   // takes cursor and limit, answers a listJSON
	statement                 bool   // takes period, from and to
	source                    bool   // takes the plan source as a query parameter
	body                      string // the request body's schema, "" for none
	status                    int    // the success status
	schema                    string // the response's schema (the item's, for a list); "" for no body
	idempotent                bool   // takes an Idempotency-Key
	errors                    []int  // error statuses beyond those every operation of its kind has
}

const (
	scopeRead  = catalog.ScopeRead
	scopeWrite = catalog.ScopeWrite
)

var apiOperations = []apiOperation{
	{method: "GET", path: "/openapi.json", id: "getOpenAPI", summary: "This document.", status: 200},
	{method: "GET", path: "/shows", id: "listShows", summary: "The shows the account manages (every show for an admin).",
		scope: scopeRead, list: true, status: 200, schema: "Show"},
	{method: "POST", path: "/shows", id: "createShow", summary: "Make a show owned by the account (a creator's).",
		scope: scopeWrite, body: "ShowCreate", status: 201, schema: "Show", idempotent: true, errors: []int{409}},
	{method: "GET", path: "/shows/{showID}", id: "getShow", summary: "One show the account manages.",
		scope: scopeRead, status: 200, schema: "Show"},
	{method: "PATCH", path: "/shows/{showID}", id: "updateShow", summary: "Change the fields of a show the body names; the others keep their values.",
		scope: scopeWrite, body: "ShowUpdate", status: 200, schema: "Show", errors: []int{409}},
	{method: "GET", path: "/shows/{showID}/episodes", id: "listEpisodes", summary: "A show's episodes, with the published torrent and its download counts.",
		scope: scopeRead, list: true, status: 200, schema: "Episode"},
	{method: "POST", path: "/shows/{showID}/episodes", id: "createEpisode", summary: "Add a draft episode to a show; upload its file with tus at /api/uploads/ (Upload-Metadata episode_id).",
		scope: scopeWrite, body: "EpisodeCreate", status: 201, schema: "EpisodeDetail", idempotent: true, errors: []int{409}},
	{method: "GET", path: "/shows/{showID}/episodes/{episodeID}", id: "getEpisode", summary: "One episode: its status (draft, uploading, processing, published, failed with failure_reason) and how far it has reached the fleet (seeded_by: \"Seeded by 1 of 2 nodes\").",
		scope: scopeRead, status: 200, schema: "EpisodeDetail"},
	{method: "PATCH", path: "/shows/{showID}/episodes/{episodeID}", id: "updateEpisode", summary: "Change an episode's title or description.",
		scope: scopeWrite, body: "EpisodeUpdate", status: 200, schema: "EpisodeDetail"},
	{method: "GET", path: "/shows/{showID}/plan", id: "getPlan", summary: "The share plan that splits a source's money received now (404 before the first plan).",
		scope: scopeRead, source: true, status: 200, schema: "Plan"},
	{method: "PUT", path: "/shows/{showID}/plan", id: "setPlan", summary: "Set the share plan for money received from now on, checked as the portal's editor checks it: basis points that add up to exactly 10000, a name and an email for each party but the distributor, no email twice. Earlier money keeps the plan it was split by; parties not yet linked to an account are invited by email.",
		scope: scopeWrite, body: "PlanInput", status: 200, schema: "Plan"},
	{method: "GET", path: "/donations", id: "listDonations", summary: "Paid and refunded donations to the account's shows; anonymous donors have no name.",
		scope: scopeRead, list: true, status: 200, schema: "Donation"},
	{method: "GET", path: "/statements", id: "listStatements", summary: "The parties whose payout statements the account may read.",
		scope: scopeRead, list: true, status: 200, schema: "Party"},
	{method: "GET", path: "/statements/{partyID}", id: "getStatement", summary: "A party's payout statement for a month (period) or a range of days (from, to; at most 5 years).",
		scope: scopeRead, statement: true, status: 200, schema: "Statement"},
}

// uploadOperations are the tus endpoint's (under /api/uploads, outside /api/v1): any tus 1.0
// client uploads an episode's file with them.
var uploadOperations = []apiOperation{
	{method: "POST", path: "/uploads", id: "createUpload", summary: "Start a tus upload of an episode's file: Upload-Length is its size in bytes, Upload-Metadata holds episode_id and filename (base64, as tus defines). The Location header is the upload's URL.",
		scope: scopeWrite, status: 201, errors: []int{400, 404, 409, 413, 507}},
	{method: "HEAD", path: "/uploads/{uploadID}", id: "getUploadOffset", summary: "How many bytes the server has (Upload-Offset), to resume from there.",
		scope: scopeWrite, status: 200, errors: []int{404}},
	{method: "PATCH", path: "/uploads/{uploadID}", id: "patchUpload", summary: "Send bytes from Upload-Offset (Content-Type: application/offset+octet-stream). After the last byte the episode is processing; follow it with getEpisode.",
		scope: scopeWrite, status: 204, errors: []int{400, 404, 409, 413, 415, 422, 507}},
	{method: "DELETE", path: "/uploads/{uploadID}", id: "cancelUpload", summary: "Cancel an upload; the episode goes back to draft.",
		scope: scopeWrite, status: 204, errors: []int{404}},
}

// errorStatuses are the error statuses op answers with, each with what it means there.
func (op apiOperation) errorStatuses() map[int]string {
	out := map[int]string{}
	if op.scope != "" {
		out[401] = "No token, or a wrong, revoked (code unauthorized) or expired (code token_expired) one."
		out[403] = "The token's scope does not cover " + op.scope + " (code insufficient_scope), or the account may not do this (code forbidden)."
	}
	if strings.Contains(op.path, "{") {
		out[404] = "Nothing here, or not the account's to see (code not_found)."
	}
	if op.list || op.statement || op.source || op.body != "" {
		out[400] = "Bad input (code invalid); field names the field at fault."
	}
	if op.idempotent {
		out[409] = "Idempotency-Key used before for a different request (code conflict, field Idempotency-Key)."
	}
	for _, st := range op.errors {
		if _, ok := out[st]; !ok {
			out[st] = http.StatusText(st)
		}
	}
	switch {
	case op.id == "createShow" || op.id == "updateShow":
		out[409] = "Another show uses the slug (code conflict, field slug), or the Idempotency-Key was used for a different request."
	case op.id == "createUpload" || op.id == "patchUpload":
		out[409] = "The episode already has its file, or Upload-Offset is not the server's (code conflict)."
		if op.id == "patchUpload" {
			out[415] = "The file is not audio, video or an archive (code unsupported_media_type): the episode fails with that reason."
		}
	}
	return out
}

type obj = map[string]any

func prop(typ string, desc string) obj {
	o := obj{"type": typ}
	if desc != "" {
		o["description"] = desc
	}
	return o
}

// nullable lets o be null too (OpenAPI 3.1: a type list).
func nullable(o obj) obj { o["type"] = []string{o["type"].(string), "null"}; return o }

func ref(name string) obj { return obj{"$ref": "#/components/schemas/" + name} }

// object is an object schema with exactly these properties: any other is undocumented.
func object(required []string, props obj) obj {
	return obj{"type": "object", "required": required, "properties": props, "additionalProperties": false}
}

func statementLineSchema() obj {
	return object([]string{"count", "gross", "fee", "share", "fee_absorbed", "amount"}, obj{
		"day": prop("string", "UTC day, YYYY-MM-DD"), "kind": prop("string", "payment, refund, refund_failed, dispute, dispute_won, payout or adjustment"),
		"show_id": prop("integer", ""), "show": prop("string", ""), "source": prop("string", "donations or sponsorship"),
		"entry_id": prop("integer", "the ledger entry, for payouts and adjustments"), "description": prop("string", ""),
		"count": prop("integer", "ledger entries in the line"), "gross": prop("integer", "what payers paid (negative when returned)"),
		"fee": prop("integer", "what Stripe withheld"), "share": prop("integer", "the party's share"),
		"fee_absorbed": prop("integer", "fees the party gave up from its share"),
		"amount":       prop("integer", "what the line added to the party's balance"),
	})
}

func errorResponse(desc string) obj {
	return obj{"description": desc, "content": obj{"application/json": obj{"schema": ref("Error")}}}
}

// operation is op in the document.
func (op apiOperation) operation() obj {
	params := []obj{}
	for _, name := range pathParams(op.path) {
		schema := prop("integer", "")
		if name == "uploadID" {
			schema = obj{"type": "string", "pattern": "^[0-9a-f]{32}$"}
		}
		params = append(params, obj{"name": name, "in": "path", "required": true, "schema": schema})
	}
	if op.list {
		params = append(params,
			obj{"name": "cursor", "in": "query", "schema": prop("string", "next_cursor of the previous page")},
			obj{"name": "limit", "in": "query", "schema": obj{"type": "integer", "minimum": 1, "maximum": maxPageLimit, "default": defaultPageLimit}})
	}
	if op.statement {
		params = append(params,
			obj{"name": "period", "in": "query", "schema": prop("string", "a month, YYYY-MM")},
			obj{"name": "from", "in": "query", "schema": prop("string", "first day, YYYY-MM-DD")},
			obj{"name": "to", "in": "query", "schema": prop("string", "last day, YYYY-MM-DD (default today)")})
	}
	if op.source {
		params = append(params, obj{"name": "source", "in": "query", "schema": obj{"type": "string", "enum": []string{"all", "donations", "sponsorship"}, "default": "all"}})
	}
	if op.idempotent {
		params = append(params, obj{"name": "Idempotency-Key", "in": "header", "schema": obj{"type": "string", "minLength": 1, "maxLength": 255},
			"description": "Any unique string: a retry with the same key and body within 24 hours gets the first answer again (with Idempotent-Replayed: true) and creates nothing."})
	}
	if strings.HasPrefix(op.path, "/uploads") {
		params = append(params, obj{"name": "Tus-Resumable", "in": "header", "required": true, "schema": obj{"type": "string", "enum": []string{"1.0.0"}}})
		switch op.method {
		case "POST":
			params = append(params,
				obj{"name": "Upload-Length", "in": "header", "required": true, "schema": obj{"type": "integer", "minimum": 1}},
				obj{"name": "Upload-Metadata", "in": "header", "required": true, "schema": prop("string", "episode_id <base64>,filename <base64>")})
		case "PATCH":
			params = append(params, obj{"name": "Upload-Offset", "in": "header", "required": true, "schema": obj{"type": "integer", "minimum": 0}})
		}
	}
	success := obj{"description": http.StatusText(op.status)}
	switch {
	case op.schema == "" && op.id == "getOpenAPI":
		success["content"] = obj{"application/json": obj{"schema": obj{"type": "object"}}}
	case op.schema == "":
	case op.list:
		success["content"] = obj{"application/json": obj{"schema": object([]string{"data", "next_cursor"}, obj{
			"data":        obj{"type": "array", "items": ref(op.schema)},
			"next_cursor": nullable(prop("string", "null on the last page")),
		})}}
	default:
		success["content"] = obj{"application/json": obj{"schema": ref(op.schema)}}
	}
	switch op.id {
	case "createUpload":
		success["headers"] = obj{"Location": obj{"schema": prop("string", "the upload's URL")}}
	case "getUploadOffset", "patchUpload":
		success["headers"] = obj{"Upload-Offset": obj{"schema": prop("integer", "the bytes the server has")}}
	}
	responses := obj{strconv.Itoa(op.status): success, "5XX": errorResponse("The server failed (code internal) or its database is unreachable (code unavailable); retry later.")}
	for st, desc := range op.errorStatuses() {
		responses[strconv.Itoa(st)] = errorResponse(desc)
	}
	o := obj{"operationId": op.id, "summary": op.summary, "parameters": params, "responses": responses}
	if op.body != "" {
		o["requestBody"] = obj{"required": true, "content": obj{"application/json": obj{"schema": ref(op.body)}}}
	}
	if op.scope == "" {
		o["security"] = []obj{}
	} else {
		o["security"] = []obj{{"token": []string{op.scope}}}
		o["x-scope"] = op.scope
	}
	return o
}

// openAPIDocument is the OpenAPI 3.1 description of apiV1 (and of the tus upload endpoint
// beside it), built from apiOperations and uploadOperations.
func openAPIDocument(baseURL string) obj {
	base := strings.TrimSuffix(baseURL, "/")
	paths := obj{}
	add := func(op apiOperation, servers []obj) {
		item, _ := paths[op.path].(obj)
		if item == nil {
			item = obj{}
			if servers != nil {
				item["servers"] = servers
			}
			paths[op.path] = item
		}
		item[strings.ToLower(op.method)] = op.operation()
	}
	for _, op := range apiOperations {
		add(op, nil)
	}
	for _, op := range uploadOperations {
		add(op, []obj{{"url": base + "/api", "description": "the tus 1.0 upload endpoint"}})
	}
	line := statementLineSchema()
	dateTime := func() obj { return obj{"type": "string", "format": "date-time"} }
	episodeProps := func() obj {
		return obj{
			"id": prop("integer", ""), "show_id": prop("integer", ""), "title": prop("string", ""), "description": prop("string", ""),
			"status":         obj{"type": "string", "enum": []string{"draft", "uploading", "processing", "published", "failed"}},
			"failure_reason": prop("string", "why a failed episode failed, for people; empty otherwise"),
			"created_at":     dateTime(), "published_at": nullable(dateTime()),
			"torrent": nullable(object([]string{"infohash", "name", "length", "piece_length", "content_type", "torrent_url", "magnet", "web_seed"}, obj{
				"infohash": prop("string", "hex"), "name": prop("string", ""), "length": prop("integer", "bytes"),
				"piece_length": prop("integer", ""), "content_type": prop("string", ""), "torrent_url": prop("string", ""),
				"magnet": prop("string", ""), "web_seed": prop("string", ""),
			})),
			"stats": object([]string{"completed", "downloaders"}, obj{
				"completed": prop("integer", "completed downloads the tracker saw"), "downloaders": prop("integer", ""),
			}),
		}
	}
	episodeRequired := []string{"id", "show_id", "title", "description", "status", "failure_reason", "created_at", "published_at", "torrent", "stats"}
	detail := episodeProps()
	detail["reach"] = nullable(object([]string{"seeding_nodes", "replicas", "fan_seeders", "fan_leechers", "fan_completions", "fan_bytes_served"}, obj{
		"seeding_nodes": prop("integer", "fleet nodes seeding it now"), "replicas": prop("integer", "the nodes publishing waits for (R)"),
		"fan_seeders": prop("integer", "fans seeding now, the fleet's nodes apart"), "fan_leechers": prop("integer", "fans downloading now"),
		"fan_completions": prop("integer", "downloads fans finished"), "fan_bytes_served": prop("integer", "bytes the fleet sent to fans"),
	}))
	detail["seeded_by"] = nullable(prop("string", "Seeded by N of R nodes; null before the file is uploaded"))
	showFields := func() obj {
		return obj{
			"slug": prop("string", "the fan page's address, /s/{slug}: 2 to 60 of a-z, 0-9 and single hyphens"), "title": prop("string", "1 to 200 characters"),
			"description": prop("string", "at most 5000 characters"), "currency": prop("string", "ISO 4217 code, such as USD"),
			"funding_goal": obj{"type": "integer", "minimum": 0, "description": "per month, in minor units of the currency; 0 for none"},
		}
	}
	episodeFields := func() obj {
		return obj{"title": prop("string", "1 to 200 characters"), "description": prop("string", "at most 5000 characters")}
	}
	return obj{
		"openapi": "3.1.0",
		"info": obj{"title": "Fanseed API", "version": "1",
			"description": "JSON API. Authenticate with an API token from /account/tokens: Authorization: Bearer <token>. " +
				"A token has a scope, read or write (write includes read), and may expire; each operation names the scope it needs. " +
				"Amounts are integers in minor units of their currency. Lists are paginated with an opaque cursor. " +
				"Every error is {\"error\": {\"code\", \"message\", \"field\"}}, field naming the input at fault when there is one."},
		"servers":  []obj{{"url": base + "/api/v1"}},
		"security": []obj{{"token": []string{scopeRead}}},
		"paths":    paths,
		"components": obj{
			"securitySchemes": obj{"token": obj{"type": "http", "scheme": "bearer",
				"description": "An API token (fst_...) from /account/tokens. Its scope is read or write: the scopes each operation lists under security are what its token needs."}},
			"schemas": obj{
				"Error": object([]string{"error"}, obj{"error": object([]string{"code", "message"}, obj{
					"code": obj{"type": "string", "enum": []string{"invalid", "conflict", "unauthorized", "token_expired", "insufficient_scope",
						"forbidden", "not_found", "method_not_allowed", "too_large", "unsupported_media_type", "rejected", "storage_full", "internal", "unavailable"}},
					"message": prop("string", "what is wrong, for people"),
					"field":   prop("string", "the field (JSON name, lines[2].email, or a header such as Upload-Length) at fault, when there is one"),
				})}),
				"Show": object([]string{"id", "slug", "title", "description", "currency", "funding_goal", "url", "created_at"}, obj{
					"id": prop("integer", ""), "slug": prop("string", ""), "title": prop("string", ""), "description": prop("string", ""),
					"currency": prop("string", ""), "funding_goal": prop("integer", "per month, minor units"), "url": prop("string", "the fan page"),
					"created_at": dateTime(),
				}),
				"ShowCreate":    object([]string{"slug", "title", "currency"}, showFields()),
				"ShowUpdate":    object([]string{}, showFields()),
				"Episode":       object(episodeRequired, episodeProps()),
				"EpisodeDetail": object(append(episodeRequired, "reach", "seeded_by"), detail),
				"EpisodeCreate": object([]string{"title"}, episodeFields()),
				"EpisodeUpdate": object([]string{}, episodeFields()),
				"Plan": object([]string{"show_id", "source", "fee_policy", "effective_at", "lines"}, obj{
					"show_id": prop("integer", ""), "source": obj{"type": "string", "enum": []string{"all", "donations", "sponsorship"}},
					"fee_policy": obj{"type": "string", "enum": []string{"net", "gross"}}, "effective_at": dateTime(),
					"lines": obj{"type": "array", "items": object([]string{"party_id", "kind", "name", "email", "basis_points"}, obj{
						"party_id": prop("integer", ""), "kind": prop("string", "distributor, creator or collaborator"), "name": prop("string", ""),
						"email": nullable(prop("string", "")), "basis_points": prop("integer", "the party's share; 10000 is 100%"),
					})},
				}),
				"PlanInput": object([]string{"lines"}, obj{
					"source":     obj{"type": "string", "enum": []string{"all", "donations", "sponsorship"}, "default": "all"},
					"fee_policy": obj{"type": "string", "enum": []string{"net", "gross"}, "default": "net", "description": "net: shares of what is left after Stripe's fee"},
					"lines": obj{"type": "array", "minItems": 1, "maxItems": 20, "items": object([]string{"basis_points"}, obj{
						"distributor":  prop("boolean", "the platform's line: no name or email"),
						"name":         prop("string", "1 to 100 characters, for every party but the distributor"),
						"email":        prop("string", "the party's address: the show owner's own makes the creator party; anyone else is invited"),
						"basis_points": obj{"type": "integer", "minimum": 1, "maximum": 10000, "description": "all lines together: exactly 10000"},
					})},
				}),
				"Donation": object([]string{"id", "show_id", "episode_id", "amount", "currency", "monthly", "anonymous", "display_name", "message", "status", "created_at", "paid_at"}, obj{
					"id": prop("integer", ""), "show_id": prop("integer", ""), "episode_id": nullable(prop("integer", "")),
					"amount": prop("integer", ""), "currency": prop("string", ""), "monthly": prop("boolean", ""),
					"anonymous": prop("boolean", ""), "display_name": prop("string", ""), "message": prop("string", ""),
					"status": prop("string", "paid or refunded"), "created_at": dateTime(),
					"paid_at": nullable(dateTime()),
				}),
				"Party": object([]string{"id", "kind", "name", "statement"}, obj{
					"id": prop("integer", ""), "kind": prop("string", "creator, distributor or collaborator"), "name": prop("string", ""),
					"statement": prop("string", "the statement's path"),
				}),
				"StatementLine": line,
				"Statement": object([]string{"party", "from", "to", "granularity", "currencies"}, obj{
					"party": object([]string{"id", "kind", "name"}, obj{"id": prop("integer", ""), "kind": prop("string", ""), "name": prop("string", "")}),
					"from":  prop("string", "YYYY-MM-DD"), "to": prop("string", "YYYY-MM-DD, included"),
					"granularity": prop("string", "what a line is"),
					"currencies": obj{"type": "array", "items": object([]string{"currency", "opening", "closing", "change"}, obj{
						"currency": prop("string", ""), "opening": prop("integer", ""), "closing": prop("integer", "opening + change"),
						"change":      prop("integer", "the sum of every line's amount"),
						"sources":     obj{"type": "array", "items": ref("StatementLine")},
						"adjustments": obj{"type": "array", "items": ref("StatementLine")},
						"payouts":     obj{"type": "array", "items": ref("StatementLine")},
						"other":       obj{"type": "array", "items": ref("StatementLine")},
						"totals": object([]string{"sources", "adjustments", "payouts", "other"}, obj{
							"sources": ref("StatementLine"), "adjustments": ref("StatementLine"),
							"payouts": ref("StatementLine"), "other": ref("StatementLine"),
						}),
					})},
				}),
			},
		},
	}
}

// pathParams are the names in {braces} in a path.
func pathParams(path string) []string {
	var out []string
	for _, seg := range strings.Split(path, "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			out = append(out, seg[1:len(seg)-1])
		}
	}
	return out
}

// handleOpenAPI serves the document; it needs no token.
func (s *Server) handleOpenAPI() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		base := ""
		if s.publisher != nil {
			base = s.publisher.BaseURL
		}
		writeJSON(w, http.StatusOK, openAPIDocument(base))
	}
}
