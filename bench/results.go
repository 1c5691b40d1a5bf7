package main

// dendriteResults is what the Dendrite scenarios (dendrite_bench_test.go) hand back.
type dendriteResults struct {
	Projects, Members             int
	WorkerWallS, NaiveWallS       float64
	WorkerDendriteCPUS            float64
	WorkerOursCPUS                float64
	NaiveDendriteCPUS             float64
	DiagHealthyMS, DiagBlackholeS []float64
	DiagTimeoutS                  float64
	Sweep                         []sweepPoint // the worker at several concurrencies
}

// sweepPoint is one worker run at a given concurrency, on a fresh Dendrite.
type sweepPoint struct {
	Concurrency                   int
	WallS, DendriteCPUS, OursCPUS float64
}

// botResults is what TestBenchBot hands back to scenario 9.
type botResults struct {
	Commands  int
	Rooms     int
	LatencyMS []float64 // per command: its transaction arriving -> its reply's send leaving
	Messages  int
	OutboxS   float64 // the outbox: first message queued -> last one recorded as sent
	QueuedS   float64 // of which queueing them all through the API
	SerialS   float64 // the same number of plain sends, one after the other
	InFlight  int
}
