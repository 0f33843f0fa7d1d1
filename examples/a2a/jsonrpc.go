package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// rpcRequest is a JSON-RPC 2.0 request of the A2A JSON-RPC binding.
type rpcRequest struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      any             `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// Message and Part are the A2A types this agent reads and writes.
type Message struct {
	Kind      string `json:"kind"`
	Role      string `json:"role"`
	Parts     []Part `json:"parts"`
	MessageID string `json:"messageId"`
	ContextID string `json:"contextId,omitempty"`
	TaskID    string `json:"taskId,omitempty"`
}

type Part struct {
	Kind string `json:"kind"`
	Text string `json:"text,omitempty"`
}

type sendParams struct {
	Message Message `json:"message"`
}

func serveJSONRPC(w http.ResponseWriter, r *http.Request, log *slog.Logger) {
	var req rpcRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil || req.JSONRPC != "2.0" {
		writeRPC(w, nil, nil, &rpcError{Code: -32700, Message: "expected a JSON-RPC 2.0 request"})
		return
	}
	var p sendParams
	if req.Method == "message/send" || req.Method == "message/stream" {
		if err := json.Unmarshal(req.Params, &p); err != nil || len(p.Message.Parts) == 0 {
			writeRPC(w, req.ID, nil, &rpcError{Code: -32602, Message: "params.message with parts is required"})
			return
		}
		if p.Message.ContextID == "" {
			p.Message.ContextID = newID()
		}
		p.Message.Kind = "message"
	}
	switch req.Method {
	case "message/send":
		writeRPC(w, req.ID, reply(p.Message, echoText(p.Message)), nil)
	case "message/stream":
		stream(w, r, req.ID, p.Message, log)
	default:
		writeRPC(w, req.ID, nil, &rpcError{Code: -32601, Message: fmt.Sprintf("method %q is not supported: use message/send or message/stream", req.Method)})
	}
}

func echoText(m Message) string {
	var words []string
	for _, p := range m.Parts {
		if p.Kind == "text" {
			words = append(words, p.Text)
		}
	}
	return "echo: " + strings.Join(words, " ")
}

func reply(to Message, text string) Message {
	return Message{Kind: "message", Role: "agent", Parts: []Part{{Kind: "text", Text: text}}, MessageID: newID(), ContextID: to.ContextID}
}

// stream answers message/stream: each event is a whole JSON-RPC response
// carrying the task, a status update or an artifact update, flushed as it
// is made. The word-by-word delay shows the stream arriving incrementally.
func stream(w http.ResponseWriter, r *http.Request, id any, msg Message, log *slog.Logger) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	task := newID()
	send := func(result any) bool {
		b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "result": result})
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return false
		}
		return http.NewResponseController(w).Flush() == nil
	}
	status := func(state string, final bool) map[string]any {
		return map[string]any{"kind": "status-update", "taskId": task, "contextId": msg.ContextID,
			"status": map[string]any{"state": state, "timestamp": time.Now().UTC().Format(time.RFC3339Nano)}, "final": final}
	}
	if !send(map[string]any{"kind": "task", "id": task, "contextId": msg.ContextID, "status": map[string]string{"state": "submitted"}, "history": []Message{msg}}) ||
		!send(status("working", false)) {
		return
	}
	words := strings.Fields(echoText(msg))
	for i, word := range words {
		select {
		case <-time.After(100 * time.Millisecond):
		case <-r.Context().Done():
			log.Info("client left a stream", "task", task)
			return
		}
		if !send(map[string]any{"kind": "artifact-update", "taskId": task, "contextId": msg.ContextID, "append": i > 0, "lastChunk": i == len(words)-1,
			"artifact": map[string]any{"artifactId": "echo", "parts": []Part{{Kind: "text", Text: word + " "}}}}) {
			return
		}
	}
	send(status("completed", true))
}

func writeRPC(w http.ResponseWriter, id, result any, rerr *rpcError) {
	resp := map[string]any{"jsonrpc": "2.0", "id": id}
	if rerr != nil {
		resp["error"] = rerr
	} else {
		resp["result"] = result
	}
	writeJSON(w, resp)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
