-- ArgoCD health check for orchestrator.dev MesosCluster, ZkMigration and ProbeFleet.
-- (argocd-cm: resource.customizations.health.orchestrator.dev_<Kind>; Lua 5.1 / gopher-lua.)
--
-- Reads what the operator writes, generically for the three kinds:
--   * status.observedGeneration (or the conditions' observedGeneration) behind
--     metadata.generation: the operator has not seen the latest spec yet -> Progressing;
--   * status.phase: Failed, Degraded, Invalid -> Degraded; Succeeded, Ready -> Healthy;
--     Pending, Progressing, Running -> Progressing;
--   * conditions: Accepted=False or Degraded=True -> Degraded; Ready=True -> Healthy,
--     Ready=False -> Progressing (when the phase does not already say more).
local hs = {}

local function condition_message(c, fallback)
  if c == nil then
    return fallback
  end
  local text = c.message
  if text == nil or text == "" then
    text = c.reason
  end
  if text == nil or text == "" then
    return fallback
  end
  return text
end

if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end

local status = obj.status
local conditions = {}
local observed = status.observedGeneration
if status.conditions ~= nil then
  for _, c in ipairs(status.conditions) do
    if c.type ~= nil then
      conditions[c.type] = c
    end
    if observed == nil and c.observedGeneration ~= nil then
      observed = c.observedGeneration
    end
  end
end

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end
if generation ~= nil and observed ~= nil and observed < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local phase = status.phase
local accepted = conditions["Accepted"]
local degraded = conditions["Degraded"]
local ready = conditions["Ready"]

if phase == "Failed" or phase == "Degraded" or phase == "Invalid" then
  hs.status = "Degraded"
  local c = degraded
  if c == nil or c.status ~= "True" then
    c = ready
  end
  if phase == "Invalid" and accepted ~= nil then
    c = accepted
  end
  hs.message = phase .. ": " .. condition_message(c, "see status.conditions")
  return hs
end

if accepted ~= nil and accepted.status == "False" then
  hs.status = "Degraded"
  hs.message = "Not accepted: " .. condition_message(accepted, "invalid spec")
  return hs
end

if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = condition_message(degraded, "Degraded")
  return hs
end

if phase == "Succeeded" or phase == "Ready" then
  if ready ~= nil and ready.status ~= "True" then
    hs.status = "Progressing"
    hs.message = condition_message(ready, "Not ready yet")
    return hs
  end
  hs.status = "Healthy"
  hs.message = condition_message(ready, phase)
  return hs
end

if phase == "Pending" or phase == "Progressing" or phase == "Running" then
  hs.status = "Progressing"
  local c = ready
  if c == nil then
    c = accepted
  end
  hs.message = phase .. ": " .. condition_message(c, "in progress")
  return hs
end

if ready ~= nil then
  if ready.status == "True" then
    hs.status = "Healthy"
  else
    hs.status = "Progressing"
  end
  hs.message = condition_message(ready, "Ready is " .. tostring(ready.status))
  return hs
end

hs.status = "Progressing"
if phase ~= nil then
  hs.message = "Phase " .. tostring(phase)
else
  hs.message = "Waiting for the operator to report a phase"
end
return hs
