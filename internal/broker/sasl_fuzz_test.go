package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzSASLSession feeds any two client messages to each mechanism: no
// panic, and no authentication without the password (the fuzzer cannot
// forge a SCRAM proof, and "alice-secret" is not among the seeds).
func FuzzSASLSession(f *testing.F) {
	f.Add([]byte("\x00alice\x00wrong"), []byte(""))
	f.Add([]byte("n,,n=alice,r=abc"), []byte("c=biws,r=abc,p=AAAA"))
	f.Add([]byte("n,a=alice,n=alice,r=abc,ext=1"), []byte("c=biwsYT1hbGljZSw=,r=abcdef,p="))
	f.Add([]byte("y,,n=al=2Cice=3D,r=x"), []byte(",p=,p=,p="))
	f.Add([]byte("p=tls-unique,,n=alice,r=abc"), []byte{})
	f.Add([]byte("n,,n=a=ZZ,r="), []byte("r=,c="))
	sec, err := newSecurity(Config{
		SASLMechanisms: []string{MechanismPlain, MechanismScramSHA256, MechanismScramSHA512},
		Users:          map[string]string{"alice": "alice-secret"},
	}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, first, final []byte) {
		for _, m := range sec.names {
			s := sec.session(m)
			_, done, err := s.step(first)
			if done {
				t.Fatalf("%s authenticated %q with its first message", m, first)
			}
			if err != nil {
				continue
			}
			if _, done, err := s.step(final); done || err == nil {
				t.Fatalf("%s authenticated %q, %q", m, first, final)
			}
		}
	})
}

// FuzzParseRequest: any frame before authentication parses or fails
// cleanly, and so does an ApiVersions answer to patch.
func FuzzParseRequest(f *testing.F) {
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Mechanism = "PLAIN"
	f.Add(append([]byte{0, 17, 0, 1, 0, 0, 0, 7, 0, 1, 'x'}, hs.AppendTo(nil)...))
	f.Add([]byte{0, 18, 0, 3, 0, 0, 0, 1, 255, 255, 0, 1, 'a', 1, 0})
	f.Add([]byte{0, 36, 0, 2, 0, 0, 0, 9, 0, 0, 5, 0, 0, 0})
	f.Add([]byte{0x7f, 0x7f})
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 3
	k := kmsg.NewApiVersionsResponseApiKey()
	k.ApiKey, k.MinVersion, k.MaxVersion = 17, 1, 1
	resp.ApiKeys = append(resp.ApiKeys, k)
	f.Add(resp.AppendTo(nil))
	f.Fuzz(func(t *testing.T, frame []byte) {
		if _, _, _, req, body, err := parseRequest(frame); err == nil {
			_ = req.ReadFrom(body)
		}
		for _, v := range []int16{0, 3} {
			if out, ok := patchAPIVersions(frame, v); ok {
				back := kmsg.NewPtrApiVersionsResponse()
				back.Version = v
				if err := back.ReadFrom(out); err != nil {
					t.Fatalf("patched v%d answer does not parse: %v", v, err)
				}
			}
		}
	})
}
