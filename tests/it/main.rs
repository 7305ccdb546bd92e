mod asff_conformance;
