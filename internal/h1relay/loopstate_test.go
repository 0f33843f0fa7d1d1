package h1relay

import "testing"

// answerState decides what a loop does with an answer read so far: wait,
// relay it from memory, or give it to a goroutine to stream.
func TestAnswerState(t *testing.T) {
	big := "HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\n"
	for _, c := range []struct {
		name, answer string
		isHead       bool
		want         int
	}{
		{"head in part", "HTTP/1.1 200 OK\r\nContent-Len", false, answerPartialHead},
		{"whole", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", false, answerWhole},
		{"body in part", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhi", false, answerPartialBody},
		{"length in any case, spaces", "HTTP/1.1 200 OK\r\ncontent-length:  2 \r\n\r\nhi", false, answerWhole},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, answerStreams},
		{"until close", "HTTP/1.1 200 OK\r\nX: y\r\n\r\nabc", false, answerStreams},
		{"interim first", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", false, answerStreams},
		{"longer than the loop keeps", big, false, answerStreams},
		{"HEAD: no body whatever the framing", "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true, answerWhole},
		{"HEAD chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true, answerWhole},
		{"204", "HTTP/1.1 204 No Content\r\n\r\n", false, answerWhole},
		{"304 with a length", "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", false, answerWhole},
		// The relayer refuses these as the goroutine path would.
		{"not HTTP", "SSH-2.0-OpenSSH\r\n\r\n", false, answerWhole},
		{"bad status", "HTTP/1.1 2x0 OK\r\n\r\n", false, answerWhole},
	} {
		if got := answerState([]byte(c.answer), c.isHead); got != c.want {
			t.Errorf("%s: state %d, want %d", c.name, got, c.want)
		}
	}
}
