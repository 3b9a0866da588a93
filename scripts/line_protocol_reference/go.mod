module streamer/scripts/line_protocol_reference

go 1.23.0

require github.com/influxdata/influxdb/v2 v2.7.12
