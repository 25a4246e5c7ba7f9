package webhook

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Attacker speaks raw HTTP/2 frames to the server, as an attacking client would.
type h2Attacker struct {
	conn   *tls.Conn
	framer *http2.Framer
	enc    *hpack.Encoder
	hbuf   bytes.Buffer
}

func newH2Attacker(t *testing.T, addr string, ca *testCA) *h2Attacker {
	t.Helper()
	conn, err := dialTLS(t, addr, ca, &tls.Config{NextProtos: []string{"h2"}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	require.Equal(t, "h2", conn.ConnectionState().NegotiatedProtocol)
	_, err = io.WriteString(conn, http2.ClientPreface)
	require.NoError(t, err)
	a := &h2Attacker{conn: conn, framer: http2.NewFramer(conn, conn)}
	a.enc = hpack.NewEncoder(&a.hbuf)
	require.NoError(t, a.framer.WriteSettings())
	// Read frames in the background so the server is never blocked on a full socket.
	go func() { _, _ = io.Copy(io.Discard, conn) }()
	return a
}

// headerBlock encodes the headers of a review POST.
func (a *h2Attacker) headerBlock() []byte {
	a.hbuf.Reset()
	for _, f := range []hpack.HeaderField{
		{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "https"}, {Name: ":authority", Value: "localhost"},
		{Name: ":path", Value: MutatePodPath}, {Name: "content-type", Value: "application/json"},
	} {
		_ = a.enc.WriteField(f)
	}
	return bytes.Clone(a.hbuf.Bytes())
}

// answeredNormally sends one ordinary review over HTTP/1.1 on a connection of its own and reports
// how long the answer took.
func answeredNormally(t *testing.T, addr string, ca *testCA) time.Duration {
	t.Helper()
	conn, err := dialTLS(t, addr, ca, nil)
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	body := readFixture(t, "aws-irsa.json")
	start := time.Now()
	_, err = io.WriteString(conn, "POST "+MutatePodPath+" HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: "+
		strconv.Itoa(len(body))+"\r\n\r\n"+string(body))
	require.NoError(t, err)
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	out, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", out)
	assert.Contains(t, string(out), `"patch"`)
	return time.Since(start)
}

// HTTP/2 rapid reset (CVE-2023-44487): streams opened and cancelled at once, tens of thousands
// of times. With --enable-http2 the server bounds the handlers per connection (64 streams) and
// the work of cancelled ones; other clients are answered meanwhile and no goroutines pile up.
func TestHTTP2RapidResetLeavesOthersServed(t *testing.T) {
	m, _ := newMutator(testPolicy())
	m.Limits = NewLimits(0, 0, m.Metrics)
	addr, ca := startServer(t, ServerOptions{EnableHTTP2: true, RequestTimeout: 2 * time.Second}, m)
	before := runtime.NumGoroutine()

	a := newH2Attacker(t, addr, ca)
	block := a.headerBlock()
	peak, sent := 0, 0
	for i := range 20000 {
		id := uint32(2*i + 1)
		if err := a.framer.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndHeaders: true}); err != nil {
			break // the server closed the connection: also a defence
		}
		if err := a.framer.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
			break
		}
		sent++
		if i%1000 == 0 {
			peak = max(peak, runtime.NumGoroutine())
		}
	}
	t.Logf("%d streams opened and reset before the server closed the connection or the attack ended", sent)
	took := answeredNormally(t, addr, ca)
	assert.Less(t, took, 2*time.Second, "an ordinary review during the attack")
	assert.Less(t, peak-before, 200, "goroutines during the attack: %d before, peak %d", before, peak)
}

// CONTINUATION flood (CVE-2023-45288): a header block that never ends. The server stops reading it
// at its header limit and closes the connection instead of buffering without bound.
func TestHTTP2ContinuationFloodIsCutOff(t *testing.T) {
	addr, ca := startServer(t, ServerOptions{EnableHTTP2: true, RequestTimeout: 2 * time.Second}, okHandler)
	conn, err := dialTLS(t, addr, ca, &tls.Config{NextProtos: []string{"h2"}})
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	_, err = io.WriteString(conn, http2.ClientPreface)
	require.NoError(t, err)
	framer := http2.NewFramer(conn, conn)
	require.NoError(t, framer.WriteSettings())
	closed := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, conn); close(closed) }()

	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	for _, f := range []hpack.HeaderField{{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "https"},
		{Name: ":authority", Value: "localhost"}, {Name: ":path", Value: "/"}} {
		require.NoError(t, enc.WriteField(f))
	}
	require.NoError(t, framer.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hbuf.Bytes()}))
	filler := bytes.Repeat([]byte{0x40, 0x01, 'x', 0x7f, 0x7f}, 3000) // literal headers, never ended
	sent := 0
	for sent < 64<<20 {
		if err := framer.WriteContinuation(1, false, filler); err != nil {
			break
		}
		sent += len(filler)
		select {
		case <-closed:
			sent = 1 << 62
		default:
		}
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the server kept reading an endless header block")
	}
	answered := answeredNormallyOK(t, addr, ca)
	assert.True(t, answered)
}

// answeredNormallyOK is okHandler's counterpart of answeredNormally.
func answeredNormallyOK(t *testing.T, addr string, ca *testCA) bool {
	t.Helper()
	conn, err := dialTLS(t, addr, ca, nil)
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	_, err = io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
	require.NoError(t, err)
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	return res.StatusCode == http.StatusOK
}

// With HTTP/2 off (the default), a client that speaks HTTP/2 anyway — the connection preface
// over a connection that negotiated HTTP/1.1 — gets an HTTP/1.1 error, not a second protocol.
func TestHTTP2PrefaceWithHTTP2OffIsRefused(t *testing.T) {
	addr, ca := startServer(t, ServerOptions{}, okHandler)
	conn, err := dialTLS(t, addr, ca, &tls.Config{NextProtos: []string{"h2", "http/1.1"}})
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	require.Equal(t, "http/1.1", conn.ConnectionState().NegotiatedProtocol)
	_, err = io.WriteString(conn, http2.ClientPreface)
	require.NoError(t, err)
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, res.StatusCode, 400, "status %d", res.StatusCode)
	assert.True(t, closedWithin(conn, 5*time.Second))
}
