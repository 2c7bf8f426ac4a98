-- The most common dashboard list: one severity, riskiest first
-- (`?severity=high&sort=risk`). This index serves the filter, the order
-- and the count.
CREATE INDEX findings_severity_risk ON findings (tenant_id, environment, severity, risk_score, id);
