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
