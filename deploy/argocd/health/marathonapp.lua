-- ArgoCD health check for orchestrator.dev MarathonApp.
-- (argocd-cm: resource.customizations.health.orchestrator.dev_MarathonApp; Lua 5.1 / gopher-lua.)
--
-- A MarathonApp has no phase: the operator writes the conditions Accepted, Available,
-- Progressing and Degraded, status.marathon (the app in Marathon: instances, flapping) and,
-- for a blue-green or canary strategy, status.rollout (its phase). In this order:
--   * no status, or status.observedGeneration behind metadata.generation -> Progressing;
--   * Accepted=False -> Degraded (the spec was refused: its message says why);
--   * rollout phase RolledBack or Aborted -> Degraded (as Argo Rollouts shows an aborted
--     rollout), Paused -> Suspended (a canary waiting at a pause step to be promoted);
--   * Degraded=True -> Degraded; marathon.flapping -> Degraded;
--   * Progressing=True (a Marathon deployment or a rollout step under way) -> Progressing;
--   * Available=True -> Healthy, Available=False -> Degraded;
--   * otherwise Progressing.
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
if status.conditions ~= nil then
  for _, c in ipairs(status.conditions) do
    if c.type ~= nil then
      conditions[c.type] = c
    end
  end
end

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end
local observed = status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local accepted = conditions["Accepted"]
local available = conditions["Available"]
local progressing = conditions["Progressing"]
local degraded = conditions["Degraded"]

if accepted ~= nil and accepted.status == "False" then
  hs.status = "Degraded"
  hs.message = "Not accepted: " .. condition_message(accepted, "invalid spec")
  return hs
end

local rollout = status.rollout
if rollout ~= nil and rollout.phase ~= nil then
  local text = rollout.message
  if text == nil or text == "" then
    text = "see status.rollout"
  end
  if rollout.phase == "RolledBack" or rollout.phase == "Aborted" then
    hs.status = "Degraded"
    hs.message = "Rollout " .. rollout.phase .. ": " .. text
    return hs
  end
  if rollout.phase == "Paused" then
    hs.status = "Suspended"
    hs.message = "Rollout paused at step " .. tostring(rollout.step) .. ": " .. text
    return hs
  end
end

if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = condition_message(degraded, "Degraded")
  return hs
end

local marathon = status.marathon
if marathon ~= nil and marathon.flapping == true then
  hs.status = "Degraded"
  hs.message = "Flapping: " .. tostring(marathon.relaunches) .. " relaunches"
  return hs
end

if progressing ~= nil and progressing.status == "True" then
  hs.status = "Progressing"
  hs.message = condition_message(progressing, "Deployment in progress")
  return hs
end

if available ~= nil then
  if available.status == "True" then
    hs.status = "Healthy"
  else
    hs.status = "Degraded"
  end
  hs.message = condition_message(available, "Available is " .. tostring(available.status))
  return hs
end

hs.status = "Progressing"
hs.message = "Waiting for the operator to report availability"
return hs
