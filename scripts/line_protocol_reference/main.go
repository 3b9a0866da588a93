// Command line_protocol_reference reads line protocol cases and writes the verdicts of
// InfluxDB's own parser (github.com/influxdata/influxdb/v2/models at v2.7.12, the code
// behind the /api/v2/write of the InfluxDB 2.7 that docker-compose.yml runs) for every
// line of every case. The recorded verdicts are the test vectors that
// tests/unit/test_line_protocol.py checks our parser against.
//
// Input, one JSON object a line: {"id": "...", "text": "..."} or, for bytes that are not
// UTF-8, {"id": "...", "hex": "..."}; "precision" (ns, us, ms, s) is optional, ns by
// default. Output, one object a line: the case, and "lines": one entry per line that is
// not blank or a comment, with its 1-based number (the physical line it starts on) and
// either "point" or "error".
//
// A payload is split into lines by the server's own scanLine (reached with go:linkname,
// hence -ldflags=-checklinkname=0 in regenerate.sh) and each line is parsed by
// ParsePointsWithPrecision, as the server parses a request body. Two rules of the storage
// engine follow, reproduced from tsdb/field_validator.go and tsdb/shard.go (package tsdb
// cannot be built without the Flux C library): a field named "time" is not stored (a point
// with no other field is dropped), and one point giving one field key two types is
// dropped (a field type conflict). Of several values for one key, the last is stored; a
// field the iterator finds no value for refuses the write (tsdb/engine/tsm1/engine.go).
package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	_ "unsafe" // go:linkname

	"github.com/influxdata/influxdb/v2/models"
)

//go:linkname scanLine github.com/influxdata/influxdb/v2/models.scanLine
func scanLine(buf []byte, i int) (int, []byte)

// noTime is the arrival time given to the parser: a line whose point has it had no
// timestamp. No case uses this timestamp.
const noTime = int64(4242424242424242424)

type input struct {
	ID        string  `json:"id"`
	Text      *string `json:"text,omitempty"`
	Hex       *string `json:"hex,omitempty"`
	Precision string  `json:"precision,omitempty"`
}

type point struct {
	Measurement any     `json:"measurement"`
	Tags        [][]any `json:"tags"`
	Fields      [][]any `json:"fields"`
	Time        *int64  `json:"time"`
}

type verdict struct {
	Line  int    `json:"line"`
	Point *point `json:"point,omitempty"`
	Error string `json:"error,omitempty"`
}

type output struct {
	input
	Lines []verdict `json:"lines"`
}

// text is a string as JSON holds it: itself when UTF-8, else {"hex": ...}.
func text(b []byte) any {
	if utf8.Valid(b) {
		return string(b)
	}
	return map[string]string{"hex": hex.EncodeToString(b)}
}

var typeNames = map[models.FieldType]string{
	models.Float: "float", models.Integer: "integer", models.Unsigned: "unsigned",
	models.String: "string", models.Boolean: "boolean",
}

func describe(p models.Point, truncated int64) (described *point, problem string) {
	defer func() {
		if r := recover(); r != nil {
			described, problem = nil, fmt.Sprintf("panic: %v", r)
		}
	}()
	out := &point{Measurement: text(p.Name()), Tags: [][]any{}, Fields: [][]any{}}
	for _, tag := range p.Tags() {
		out.Tags = append(out.Tags, []any{text(tag.Key), text(tag.Value)})
	}
	if t := p.Time().UnixNano(); t != truncated {
		out.Time = &t
	}
	types := map[string]models.FieldType{}
	stored := 0
	iter := p.FieldIterator()
	for iter.Next() {
		key := string(iter.FieldKey())
		var value any
		var err error
		switch iter.Type() {
		case models.Float:
			var f float64
			f, err = iter.FloatValue()
			value = strconv.FormatFloat(f, 'g', -1, 64)
		case models.Integer:
			value, err = iter.IntegerValue()
		case models.Unsigned:
			value, err = iter.UnsignedValue()
		case models.Boolean:
			value, err = iter.BooleanValue()
		case models.String:
			value = text([]byte(iter.StringValue()))
		default:
			return nil, "unknown field type for " + key // as the storage engine says
		}
		if err != nil {
			return nil, "field value: " + err.Error()
		}
		out.Fields = append(out.Fields, []any{text([]byte(key)), typeNames[iter.Type()], value})
		if key == "time" {
			continue
		}
		stored++
		if seen, ok := types[key]; ok && seen != iter.Type() {
			return nil, fmt.Sprintf("field type conflict: input field %q is type %s, already exists as type %s",
				key, typeNames[iter.Type()], typeNames[seen])
		}
		types[key] = iter.Type()
	}
	if stored == 0 {
		return nil, `invalid field name: input field "time" is invalid`
	}
	return out, ""
}

// parse is the server's parse of one request body; a panic in it is an error here (the
// server's HTTP handler would answer that request with an error too).
func parse(block []byte, arrival time.Time, precision string) (points []models.Point, err error) {
	defer func() {
		if r := recover(); r != nil {
			points, err = nil, fmt.Errorf("panic: %v", r)
		}
	}()
	return models.ParsePointsWithPrecision(block, arrival, precision)
}

func verdicts(buf []byte, precision string) []verdict {
	arrival := time.Unix(0, noTime).UTC()
	truncated := noTime / models.GetPrecisionMultiplier(precision) * models.GetPrecisionMultiplier(precision)
	out := []verdict{}
	pos := 0
	for pos < len(buf) {
		start := pos
		var block []byte
		pos, block = scanLine(buf, pos)
		pos++
		number := bytes.Count(buf[:start], []byte{'\n'}) + 1
		points, err := parse(block, arrival, precision)
		switch {
		case err != nil:
			message := err.Error()
			if i := strings.Index(message, "': "); strings.HasPrefix(message, "unable to parse '") && i >= 0 {
				message = message[strings.LastIndex(message, "': ")+3:]
			}
			out = append(out, verdict{Line: number, Error: message})
		case len(points) == 1:
			p, problem := describe(points[0], truncated)
			if problem != "" {
				out = append(out, verdict{Line: number, Error: problem})
			} else {
				out = append(out, verdict{Line: number, Point: p})
			}
		case len(points) > 1:
			// A line that splits again on its own would make the per-line verdict unclear.
			fmt.Fprintf(os.Stderr, "line %d of %q splits again\n", number, buf)
			os.Exit(1)
		}
	}
	return out
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<26)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for in.Scan() {
		var c input
		if err := json.Unmarshal(in.Bytes(), &c); err != nil {
			fmt.Fprintln(os.Stderr, "bad case:", err)
			os.Exit(1)
		}
		var buf []byte
		if c.Hex != nil {
			var err error
			if buf, err = hex.DecodeString(*c.Hex); err != nil {
				fmt.Fprintln(os.Stderr, "bad hex:", err)
				os.Exit(1)
			}
		} else if c.Text != nil {
			buf = []byte(*c.Text)
		}
		precision := c.Precision
		if precision == "" {
			precision = "ns"
		}
		line, err := json.Marshal(output{c, verdicts(buf, precision)})
		if err != nil {
			fmt.Fprintln(os.Stderr, "cannot write:", err)
			os.Exit(1)
		}
		out.Write(line)
		out.WriteByte('\n')
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "cannot read:", err)
		os.Exit(1)
	}
}
