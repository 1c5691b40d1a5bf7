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
}
