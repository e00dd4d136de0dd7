package callvault_test

import (
	"encoding/hex"
	"testing"
	"time"

	"github.com/callvault/callvault"
)

func goldenEvent() *callvault.AuditEvent {
	return &callvault.AuditEvent{
		Seq:        42,
		Time:       time.Date(2026, 11, 27, 9, 30, 15, 123_000_000, time.UTC),
		ActorKind:  callvault.ActorUser,
		ActorID:    "7",
		ActorName:  "jsmith",
		ActorRole:  callvault.RolePrincipal,
		Action:     "recording.play",
		TargetType: "recording",
		TargetID:   "01a21d26-d622-7959-af57-33baca453894",
		AcademyID:  2,
		Outcome:    callvault.OutcomeAllowed,
		ClientAddr: "192.0.2.10",
		Reason:     "complaint ref C-113 — ünïcode",
		Details:    map[string]string{"range": "bytes=0-65535", "format": "wav"},
	}
}

// The canonical encoding is frozen: if this test fails, every stored hash
// would stop verifying. Do not update the golden values; add a new version.
func TestCanonicalV1Golden(t *testing.T) {
	e := goldenEvent()
	const wantEnc = "1263616c6c7661756c742d61756469742d76310234320d3137393537373138313531323304757365720137066a736d697468097072696e636970616c0e7265636f7264696e672e706c6179097265636f7264696e672430316132316432362d643632322d373935392d616635372d333362616361343533383934013207616c6c6f7765640a3139322e302e322e313021636f6d706c61696e742072656620432d31313320e2809420c3bc6ec3af636f6465013206666f726d6174037761760572616e67650d62797465733d302d3635353335"
	if got := hex.EncodeToString(e.CanonicalV1()); got != wantEnc {
		t.Errorf("CanonicalV1 drifted:\n got %s\nwant %s", got, wantEnc)
	}
	// Checked independently: Python decoded the fields above and computed
	// sha256(32 zero bytes + encoding).
	const wantHash = "ceafd1e6409a8899a28acc448c500db09afd6444cbf65667dcb341ae5ce95793"
	if got := callvault.ChainHash(callvault.GenesisHash, e); got != wantHash {
		t.Errorf("ChainHash drifted: got %s, want %s", got, wantHash)
	}
}

// Every field is covered by the hash: changing any one changes it.
func TestChainHashCoversEveryField(t *testing.T) {
	base := callvault.ChainHash(callvault.GenesisHash, goldenEvent())
	mutations := map[string]func(e *callvault.AuditEvent){
		"seq":         func(e *callvault.AuditEvent) { e.Seq++ },
		"time":        func(e *callvault.AuditEvent) { e.Time = e.Time.Add(time.Millisecond) },
		"actor kind":  func(e *callvault.AuditEvent) { e.ActorKind = callvault.ActorSystem },
		"actor id":    func(e *callvault.AuditEvent) { e.ActorID = "8" },
		"actor name":  func(e *callvault.AuditEvent) { e.ActorName = "jsmitH" },
		"actor role":  func(e *callvault.AuditEvent) { e.ActorRole = callvault.RoleCEO },
		"action":      func(e *callvault.AuditEvent) { e.Action = "recording.view" },
		"target type": func(e *callvault.AuditEvent) { e.TargetType = "grant" },
		"target id":   func(e *callvault.AuditEvent) { e.TargetID = "x" },
		"academy":     func(e *callvault.AuditEvent) { e.AcademyID = 3 },
		"outcome":     func(e *callvault.AuditEvent) { e.Outcome = callvault.OutcomeDenied },
		"client":      func(e *callvault.AuditEvent) { e.ClientAddr = "192.0.2.11" },
		"reason":      func(e *callvault.AuditEvent) { e.Reason = "" },
		"detail":      func(e *callvault.AuditEvent) { e.Details["range"] = "bytes=0-1" },
		"detail key":  func(e *callvault.AuditEvent) { e.Details["extra"] = "" },
		// Field boundaries are length-prefixed: moving text between fields changes the hash.
		"boundary": func(e *callvault.AuditEvent) { e.ActorName, e.ActorRole = "jsmithprincipal", "" },
	}
	for name, mutate := range mutations {
		e := goldenEvent()
		mutate(e)
		if callvault.ChainHash(callvault.GenesisHash, e) == base {
			t.Errorf("changing the %s does not change the hash", name)
		}
	}
	other := "1111111111111111111111111111111111111111111111111111111111111111"
	if callvault.ChainHash(other, goldenEvent()) == base {
		t.Error("the previous hash is not covered")
	}
}
