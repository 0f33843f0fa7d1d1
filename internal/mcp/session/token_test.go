package session

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

var testRoute = Route{Addr: "10.0.3.7:8012", Replica: "weather-7d9f-abcde", UpstreamID: "ZMC34PYMEM3XHHNDOPJDXVK6XV"}

func secret(c byte) []byte { return []byte(strings.Repeat(string(c), MinSecretLen)) }

func mustKeyring(t testing.TB, secrets ...[]byte) *Keyring {
	t.Helper()
	k, err := NewKeyring(secrets...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpenRoundTrip(t *testing.T) {
	k := mustKeyring(t, secret('a'))
	tok := k.Seal("default/weather", testRoute)
	for _, c := range tok {
		if c < 0x21 || c > 0x7e {
			t.Fatalf("token has %q, outside visible ASCII", c)
		}
	}
	got, err := k.Open("default/weather", tok)
	if err != nil || got != testRoute {
		t.Fatalf("Open = %+v, %v; want %+v", got, err, testRoute)
	}
	if strings.Contains(tok, testRoute.UpstreamID) || strings.Contains(tok, "weather") {
		t.Errorf("token %q leaks the route", tok)
	}
	t.Logf("token is %d characters", len(tok))
}

func TestSealIsDeterministicAndDistinct(t *testing.T) {
	k := mustKeyring(t, secret('a'))
	a, b := k.Seal("ns/x", testRoute), k.Seal("ns/x", testRoute)
	if a != b {
		t.Errorf("same route sealed twice gave %q and %q", a, b)
	}
	other := testRoute
	other.UpstreamID += "2"
	if k.Seal("ns/x", other) == a {
		t.Error("different routes gave the same token")
	}
}

func TestOpenRefusesForgeries(t *testing.T) {
	k := mustKeyring(t, secret('a'))
	tok := k.Seal("ns/a", testRoute)
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	flipped := append([]byte(nil), raw...)
	flipped[len(flipped)-3] ^= 1
	cases := map[string]struct{ scope, token string }{
		"other agent":       {"ns/b", tok},
		"tampered":          {"ns/a", base64.RawURLEncoding.EncodeToString(flipped)},
		"other key":         {"ns/a", mustKeyring(t, secret('b')).Seal("ns/a", testRoute)},
		"not base64":        {"ns/a", "not a token!"},
		"upstream id as is": {"ns/a", testRoute.UpstreamID},
		"empty":             {"ns/a", ""},
		"too short":         {"ns/a", base64.RawURLEncoding.EncodeToString([]byte{version, 1, 2})},
		"huge":              {"ns/a", strings.Repeat("A", MaxTokenLen+1)},
	}
	for name, c := range cases {
		if r, err := k.Open(c.scope, c.token); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Open = %+v, %v; want ErrInvalid", name, r, err)
		}
	}
}

func TestRotationOpensOldTokens(t *testing.T) {
	old := mustKeyring(t, secret('o'))
	tok := old.Seal("ns/a", testRoute)
	rotated := mustKeyring(t, secret('n'), secret('o'))
	if r, err := rotated.Open("ns/a", tok); err != nil || r != testRoute {
		t.Fatalf("rotated keyring cannot open a token of its old key: %+v %v", r, err)
	}
	if _, err := old.Open("ns/a", rotated.Seal("ns/a", testRoute)); err == nil {
		t.Fatal("a token sealed with the new key opened with the old keyring alone")
	}
}

func TestLoadKeyring(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "keys")
	os.WriteFile(good, []byte("# current\n"+string(secret('n'))+"\n\n"+string(secret('o'))+"\n"), 0o600)
	k, err := LoadKeyring(good)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Open("s", mustKeyring(t, secret('o')).Seal("s", testRoute)); err != nil {
		t.Errorf("second secret of the file does not open: %v", err)
	}
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("tooshort\n"), 0o600)
	if _, err := LoadKeyring(short); err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Errorf("short secret: %v", err)
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("# nothing\n"), 0o600)
	if _, err := LoadKeyring(empty); err == nil {
		t.Error("a file without secrets was accepted")
	}
	if _, err := LoadKeyring(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file was accepted")
	}
}

func TestRandomKeyringsDiffer(t *testing.T) {
	a, b := RandomKeyring(), RandomKeyring()
	if _, err := b.Open("s", a.Seal("s", testRoute)); err == nil {
		t.Fatal("two random keyrings share a key")
	}
}

func FuzzOpen(f *testing.F) {
	k := mustKeyring(f, secret('a'))
	f.Add(k.Seal("s", testRoute))
	f.Add("AQ")
	f.Fuzz(func(t *testing.T, token string) {
		r, err := k.Open("s", token)
		if err == nil && k.Seal("s", r) != token {
			// Only tokens this keyring sealed open, and sealing is deterministic.
			t.Fatalf("opened a token that is not the seal of its route: %q", token)
		}
	})
}

// TestWatchFollowsRotation walks the documented rotation on a watched key
// file, as the kubelet updates a mounted Secret: a new key first (old
// tokens still open, new ones sealed with the new key), then the old key
// dropped (its tokens refused); a broken file keeps the keys in use.
func TestWatchFollowsRotation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "keys")
		write := func(content string) {
			t.Helper()
			tmp := filepath.Join(dir, "keys.tmp")
			if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, path); err != nil { // atomic, like the kubelet's ..data swap
				t.Fatal(err)
			}
		}
		write(string(secret('o')) + "\n")
		k, err := LoadKeyring(path)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go k.Watch(ctx, WatchInterval, slog.New(slog.DiscardHandler))
		tick := func() { time.Sleep(WatchInterval + time.Millisecond); synctest.Wait() }
		oldTok := k.Seal("s", testRoute)

		write(string(secret('n')) + "\n" + string(secret('o')) + "\n")
		tick()
		if _, err := k.Open("s", oldTok); err != nil {
			t.Errorf("after adding a new key, a token of the old key does not open: %v", err)
		}
		if _, err := mustKeyring(t, secret('n')).Open("s", k.Seal("s", testRoute)); err != nil {
			t.Errorf("after adding a new key first, tokens are not sealed with it: %v", err)
		}

		write("tooshort\n")
		tick()
		if _, err := k.Open("s", oldTok); err != nil {
			t.Errorf("an invalid key file replaced the keys in use: %v", err)
		}

		write(string(secret('n')) + "\n")
		tick()
		if _, err := k.Open("s", oldTok); err == nil {
			t.Error("after dropping the old key, its token still opens")
		}
		cancel()
		synctest.Wait()
	})
}
