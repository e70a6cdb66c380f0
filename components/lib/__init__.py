"""Libraries the components run and the pipeline configures; no TFX component is defined here.

Gates and their configs (evaluation, referral_gate, shift_gate), the Evaluator's metrics, file
access for artifact URIs, artifact types, code fingerprints, run summaries and the SYNTHETIC
data generators (demo phantoms, site shifts, OOD images), kept apart from components/ so that
package lists only components.
"""
