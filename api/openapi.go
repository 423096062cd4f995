package api

import (
	"net/http"
	"strings"
)

// apiOperation is one route of the JSON API as the OpenAPI document describes it. The paths
// are chi's patterns ({showID}), which are OpenAPI's too.
type apiOperation struct {
	method, path, id, summary string
	auth                      bool
	list                      bool   // takes cursor and limit, answers a listJSON
	statement                 bool   // takes period, from and to
	schema                    string // the response's schema (the item's, for a list)
}

var apiOperations = []apiOperation{
	{"GET", "/openapi.json", "getOpenAPI", "This document.", false, false, false, ""},
	{"GET", "/shows", "listShows", "The shows the account manages (every show for an admin).", true, true, false, "Show"},
	{"GET", "/shows/{showID}", "getShow", "One show the account manages.", true, false, false, "Show"},
	{"GET", "/shows/{showID}/episodes", "listEpisodes", "A show's episodes, with the published torrent and its download counts.", true, true, false, "Episode"},
	{"GET", "/donations", "listDonations", "Paid and refunded donations to the account's shows; anonymous donors have no name.", true, true, false, "Donation"},
	{"GET", "/statements", "listStatements", "The parties whose payout statements the account may read.", true, true, false, "Party"},
	{"GET", "/statements/{partyID}", "getStatement", "A party's payout statement for a month (period) or a range of days (from, to; at most 5 years).", true, false, true, "Statement"},
}

type obj = map[string]any

func prop(typ string, desc string) obj {
	o := obj{"type": typ}
	if desc != "" {
		o["description"] = desc
	}
	return o
}

func nullable(o obj) obj { o["nullable"] = true; return o }

func ref(name string) obj { return obj{"$ref": "#/components/schemas/" + name} }

func object(required []string, props obj) obj {
	return obj{"type": "object", "required": required, "properties": props}
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

// openAPIDocument is the OpenAPI 3 description of apiV1, built from apiOperations.
func openAPIDocument(baseURL string) obj {
	errorRef := obj{"description": "Error", "content": obj{"application/json": obj{"schema": ref("Error")}}}
	paths := obj{}
	for _, op := range apiOperations {
		params := []obj{}
		for _, name := range pathParams(op.path) {
			params = append(params, obj{"name": name, "in": "path", "required": true, "schema": prop("integer", "")})
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
		var schema obj
		switch {
		case op.schema == "":
			schema = obj{"type": "object"}
		case op.list:
			schema = object([]string{"data", "next_cursor"}, obj{
				"data":        obj{"type": "array", "items": ref(op.schema)},
				"next_cursor": nullable(prop("string", "null on the last page")),
			})
		default:
			schema = ref(op.schema)
		}
		operation := obj{
			"operationId": op.id, "summary": op.summary, "parameters": params,
			"responses": obj{
				"200":     obj{"description": "OK", "content": obj{"application/json": obj{"schema": schema}}},
				"default": errorRef,
			},
		}
		if !op.auth {
			operation["security"] = []obj{}
		}
		item, _ := paths[op.path].(obj)
		if item == nil {
			item = obj{}
			paths[op.path] = item
		}
		item[strings.ToLower(op.method)] = operation
	}
	line := statementLineSchema()
	return obj{
		"openapi": "3.0.3",
		"info": obj{"title": "Fanseed API", "version": "1",
			"description": "Read-only JSON API. Authenticate with an API token from /account/tokens: Authorization: Bearer <token>. " +
				"Amounts are integers in minor units of their currency. Lists are paginated with an opaque cursor."},
		"servers":  []obj{{"url": strings.TrimSuffix(baseURL, "/") + "/api/v1"}},
		"security": []obj{{"bearer": []string{}}},
		"paths":    paths,
		"components": obj{
			"securitySchemes": obj{"bearer": obj{"type": "http", "scheme": "bearer"}},
			"schemas": obj{
				"Error": object([]string{"error"}, obj{"error": object([]string{"code", "message"}, obj{
					"code":    prop("string", "invalid, unauthorized, read_only, forbidden, not_found, method_not_allowed, internal"),
					"message": prop("string", "what is wrong, for people"),
				})}),
				"Show": object([]string{"id", "slug", "title", "currency"}, obj{
					"id": prop("integer", ""), "slug": prop("string", ""), "title": prop("string", ""), "description": prop("string", ""),
					"currency": prop("string", ""), "funding_goal": prop("integer", "per month, minor units"), "url": prop("string", "the fan page"),
					"created_at": obj{"type": "string", "format": "date-time"},
				}),
				"Episode": object([]string{"id", "show_id", "title", "status", "torrent", "stats"}, obj{
					"id": prop("integer", ""), "show_id": prop("integer", ""), "title": prop("string", ""), "description": prop("string", ""),
					"status": prop("string", ""), "created_at": obj{"type": "string", "format": "date-time"},
					"published_at": nullable(obj{"type": "string", "format": "date-time"}),
					"torrent": nullable(object([]string{"infohash", "name", "length"}, obj{
						"infohash": prop("string", "hex"), "name": prop("string", ""), "length": prop("integer", "bytes"),
						"piece_length": prop("integer", ""), "content_type": prop("string", ""), "torrent_url": prop("string", ""),
						"magnet": prop("string", ""), "web_seed": prop("string", ""),
					})),
					"stats": object([]string{"completed", "downloaders"}, obj{
						"completed": prop("integer", "completed downloads the tracker saw"), "downloaders": prop("integer", ""),
					}),
				}),
				"Donation": object([]string{"id", "show_id", "amount", "currency", "status"}, obj{
					"id": prop("integer", ""), "show_id": prop("integer", ""), "episode_id": nullable(prop("integer", "")),
					"amount": prop("integer", ""), "currency": prop("string", ""), "monthly": prop("boolean", ""),
					"anonymous": prop("boolean", ""), "display_name": prop("string", ""), "message": prop("string", ""),
					"status": prop("string", "paid or refunded"), "created_at": obj{"type": "string", "format": "date-time"},
					"paid_at": nullable(obj{"type": "string", "format": "date-time"}),
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
