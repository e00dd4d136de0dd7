package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	pqtotp "github.com/pquerna/otp/totp"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/archive"
	"github.com/callvault/callvault/cvtest"
	"github.com/callvault/callvault/secret"
	"github.com/callvault/callvault/sqldb"
	"github.com/callvault/callvault/totp"
	"github.com/callvault/callvault/web"
)

// harness is a whole callvault on real parts: SQLite, a blob folder, a key
// file, served over a real HTTP listener.
type harness struct {
	t        testing.TB
	d        *cvtest.Deployment
	totpKey  map[string]string   // login → TOTP secret
	recovery map[string][]string // login → unused recovery codes
	userID   map[string]int64
	dir      string
	db       *sqldb.DB
	srv      *web.Server
	ts       *httptest.Server
	arch     *archive.Archive
	token    string // ingest token of source "pbx"
	source   *callvault.Source
	academy  map[string]*callvault.Academy
	password string // every test user's password
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	d := cvtest.New(t)
	h := &harness{t: t, d: d, totpKey: map[string]string{}, recovery: map[string][]string{}, userID: map[string]int64{}, dir: d.Dir, db: d.DB, arch: d.Archive, academy: map[string]*callvault.Academy{}, password: "tulip kettle orbit 42"}
	h.arch.MaxSize = 4 << 20
	h.srv = &web.Server{Archive: h.arch, Recordings: d.Recordings, Academies: d.Academies,
		Users: d.Users, Sources: d.Sources, Grants: d.Grants, Tokens: d.Tokens, Holds: d.Holds, Retention: d.Retention, MFA: d.Users, Secrets: d.Vault, Auditor: d.Log, Audit: d.Audit, Pingers: []callvault.Pinger{d.DB}, Logger: cvtest.Quiet}
	if err := h.srv.Init(); err != nil {
		t.Fatal(err)
	}
	h.arch.Observer = h.srv.Metrics
	h.ts = httptest.NewServer(h.srv)
	t.Cleanup(h.ts.Close)

	sys := d.Sys
	for _, a := range []*callvault.Academy{
		{Slug: "oakfield", Name: "Oakfield", Numbers: []callvault.Range{{First: "+441632960000", Last: "+441632960099"}}, Extensions: []callvault.Range{{First: "2000", Last: "2099"}}},
		{Slug: "riverside", Name: "Riverside", Numbers: []callvault.Range{{First: "+441632961000", Last: "+441632961099"}}},
	} {
		if err := h.arch.Academies.CreateAcademy(sys, a); err != nil {
			t.Fatal(err)
		}
		got, err := h.arch.Academies.FindAcademyBySlug(sys, a.Slug)
		if err != nil {
			t.Fatal(err)
		}
		h.academy[a.Slug] = got
	}
	hash, err := secret.HashPassword(h.password)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []*callvault.User{
		{Login: "admin", Role: callvault.RoleAdmin},
		{Login: "ceo", Role: callvault.RoleCEO},
		{Login: "dpo", Role: callvault.RoleDPO},
		{Login: "principal", Role: callvault.RolePrincipal, AcademyIDs: []int64{h.academy["oakfield"].ID}},
		{Login: "listener", Role: callvault.RoleListener},
		{Login: "listener2", Role: callvault.RoleListener},
		{Login: "principal2", Role: callvault.RolePrincipal, AcademyIDs: []int64{h.academy["riverside"].ID}},
		{Login: "newbie", Role: callvault.RoleAdmin, MustChangePassword: true},
		{Login: "fresh", Role: callvault.RoleListener}, // no second factor yet
		{Login: "lapsed", Role: callvault.RoleListener},
		{Login: "gone", Role: callvault.RoleCEO},
	} {
		u.PasswordHash = hash
		if err := h.srv.Users.CreateUser(sys, u); err != nil {
			t.Fatal(err)
		}
		if u.Login == "newbie" || u.Login == "fresh" {
			continue
		}
		// Enrol a TOTP secret and plenty of recovery codes, so tests can
		// sign the same person in many times (a TOTP code works once).
		key, _, err := totp.Generate(u.Login)
		if err != nil {
			t.Fatal(err)
		}
		sealed, err := d.Vault.Seal([]byte(key), "totp:"+strconv.FormatInt(u.ID, 10))
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Users.SetTOTP(sys, u.ID, sealed, 0); err != nil {
			t.Fatal(err)
		}
		codes, hashes := totp.RecoveryCodes(300)
		if err := d.Users.SetRecoveryCodes(sys, u.ID, hashes); err != nil {
			t.Fatal(err)
		}
		h.totpKey[u.Login], h.recovery[u.Login], h.userID[u.Login] = key, codes, u.ID
	}
	h.token = secret.Token("cvi_")
	h.source = &callvault.Source{Name: "pbx", Kind: callvault.SourceAPI, TokenHash: secret.HashToken(h.token)}
	if err := h.srv.Sources.CreateSource(sys, h.source); err != nil {
		t.Fatal(err)
	}
	return h
}

// client returns an HTTP client signed in as login (or anonymous for "").
func (h *harness) client(login string) *http.Client {
	h.t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if login == "" {
		return c
	}
	resp, err := c.PostForm(h.ts.URL+"/login", url.Values{"login": {login}, "password": {h.password}})
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		h.t.Fatalf("sign in as %s: status %d", login, resp.StatusCode)
	}
	if codes := h.recovery[login]; len(codes) > 0 {
		h.recovery[login] = codes[1:]
		resp, err := c.PostForm(h.ts.URL+"/mfa", url.Values{"code": {codes[0]}, "next": {"/recordings"}})
		if err != nil {
			h.t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			h.t.Fatalf("second factor for %s: status %d", login, resp.StatusCode)
		}
	}
	return c
}

// grant lets login play the recordings, as the CEO would on the DPO's
// request, for d.
func (h *harness) grant(login string, d time.Duration, ids ...string) *callvault.Grant {
	h.t.Helper()
	as := h.as
	req := &callvault.ListenRequest{RecordingIDs: ids, Purpose: callvault.PurposeComplaint, Justification: "a parent's complaint about this call",
		ListenerIDs: []int64{h.userID[login]}, Duration: d}
	if err := h.d.Grants.CreateListenRequest(as("dpo"), req); err != nil {
		h.t.Fatal(err)
	}
	_, grants, err := h.d.Grants.DecideListenRequest(as("ceo"), req.ID, true, "necessary for the complaint")
	if err != nil || len(grants) != 1 {
		h.t.Fatalf("approving: %v, %d grants", err, len(grants))
	}
	return grants[0]
}

// audioURL asks the API for the recording's play URL (with this session's
// play token); "" when there is none.
func (h *harness) audioURL(c *http.Client, id string) string {
	h.t.Helper()
	var out struct {
		AudioURL string `json:"audio_url"`
	}
	getJSON(h.t, c, h.ts.URL+"/api/v1/recordings/"+id, &out)
	return out.AudioURL
}

// wav makes a small stereo call of the given length.
func wav(t testing.TB, codec string, d time.Duration) []byte { return cvtest.CallWAV(t, codec, d) }

type upload struct {
	meta        string // raw JSON; "" for no part
	audio       []byte // nil for no part
	audioType   string
	filename    string
	audioFirst  bool
	contentType string // overrides the request's content type
	token       string // "" uses the harness token; "-" sends none
}

func (h *harness) ingest(u upload) (*http.Response, map[string]any) {
	h.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	writeMeta := func() {
		if u.meta != "" {
			pw, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Disposition": {`form-data; name="metadata"`}, "Content-Type": {"application/json"}})
			pw.Write([]byte(u.meta))
		}
	}
	writeAudio := func() {
		if u.audio != nil {
			hd := textproto.MIMEHeader{}
			fn := u.filename
			if fn == "" {
				fn = "call.wav"
			}
			hd.Set("Content-Disposition", fmt.Sprintf(`form-data; name="audio"; filename=%q`, fn))
			at := u.audioType
			if at == "" {
				at = "audio/wav"
			}
			hd.Set("Content-Type", at)
			pw, _ := mw.CreatePart(hd)
			pw.Write(u.audio)
		}
	}
	if u.audioFirst {
		writeAudio()
		writeMeta()
	} else {
		writeMeta()
		writeAudio()
	}
	mw.Close()
	req, _ := http.NewRequest("POST", h.ts.URL+"/api/v1/recordings", &body)
	ct := mw.FormDataContentType()
	if u.contentType != "" {
		ct = u.contentType
	}
	req.Header.Set("Content-Type", ct)
	switch u.token {
	case "":
		req.Header.Set("Authorization", "Bearer "+h.token)
	case "-":
	default:
		req.Header.Set("Authorization", "Bearer "+u.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp, out
}

func meta(ref string, started time.Time, extra string) string {
	s := fmt.Sprintf(`{"source_ref":%q,"started_at":%q,"direction":"inbound","participants":[{"number":"07700 900123","name":"Parent","side":"external"},{"number":"01632 960010","extension":"2001","name":"Reception","side":"staff"}]%s}`,
		ref, started.Format(time.RFC3339), extra)
	return s
}

// countStored returns the recordings in the database and the files under the
// blob folder (committed and temporary).
func (h *harness) countStored() (rows, files int) {
	h.t.Helper()
	sys := callvault.NewContextWithActor(context.Background(), callvault.SystemActor)
	_, total, _, err := h.arch.Recordings.FindRecordings(sys, callvault.RecordingFilter{})
	if err != nil {
		h.t.Fatal(err)
	}
	filepath.WalkDir(filepath.Join(h.dir, "blobs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files++
		}
		return nil
	})
	return total, files
}

func readAll(t testing.TB, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func getJSON(t testing.TB, c *http.Client, u string, v any) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s = %d %s", u, resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// halfClient signs in with the password only: the session still needs its
// second factor.
func (h *harness) halfClient(login string) *http.Client {
	h.t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.PostForm(h.ts.URL+"/login", url.Values{"login": {login}, "password": {h.password}})
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	return c
}

func (h *harness) takeRecovery(login string) string {
	codes := h.recovery[login]
	h.recovery[login] = codes[1:]
	return codes[0]
}

// enrolForm fetches the enrolment page and answers it with a code from the
// secret it shows, as a person with an authenticator app would.
func (h *harness) enrolForm(c *http.Client) url.Values {
	h.t.Helper()
	resp, err := c.Get(h.ts.URL + "/mfa/enrol")
	if err != nil {
		h.t.Fatal(err)
	}
	body := readAll(h.t, resp)
	sealed := regexp.MustCompile(`name="sealed" value="([^"]+)"`).FindStringSubmatch(body)
	key := regexp.MustCompile(`id="totp-key" class="hash">([^<]+)<`).FindStringSubmatch(body)
	if sealed == nil || key == nil {
		h.t.Fatalf("enrolment page without a secret:\n%.500s", body)
	}
	code, err := totpCode(strings.ReplaceAll(key[1], " ", ""), time.Now())
	if err != nil {
		h.t.Fatal(err)
	}
	return url.Values{"sealed": {sealed[1]}, "code": {code}}
}

// request makes a pending listen request by the DPO for listener.
func (h *harness) request(listener string, ids ...string) *callvault.ListenRequest {
	h.t.Helper()
	req := &callvault.ListenRequest{RecordingIDs: ids, Purpose: callvault.PurposeTraining, Justification: "training need for new staff",
		ListenerIDs: []int64{h.userID[listener]}, Duration: time.Hour}
	if err := h.d.Grants.CreateListenRequest(h.as("dpo"), req); err != nil {
		h.t.Fatal(err)
	}
	return req
}

// breakGlass opens emergency access as login.
func (h *harness) breakGlass(login string, ids ...string) *callvault.Grant {
	h.t.Helper()
	g, err := h.d.Grants.BreakGlass(h.as(login), ids, "a child may be at risk tonight")
	if err != nil {
		h.t.Fatal(err)
	}
	return g
}

// as is a context acting as login.
func (h *harness) as(login string) context.Context {
	h.t.Helper()
	u, err := h.d.Users.FindUserByLogin(h.d.Sys, login)
	if err != nil {
		h.t.Fatal(err)
	}
	return callvault.NewContextWithActor(context.Background(), &callvault.Actor{User: u})
}

// totpCode is what an authenticator app shows for key at t (RFC 6238,
// SHA-1, 6 digits, 30 s), computed by pquerna/otp independently of ours.
func totpCode(key string, t time.Time) (string, error) { return pqtotp.GenerateCode(key, t) }
