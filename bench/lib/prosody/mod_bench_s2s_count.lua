-- Counts the stanzas this Prosody routes to other servers over s2s (benchmark only).
--
-- Every stanza for a remote domain passes the `route/remote` event of the host it is from
-- (core_route_stanza) exactly once, before mod_s2s queues or writes it; dialback and stream
-- elements do not. Loaded on the virtual host and on each component, this module counts
-- each such stanza by sending host, receiving host and stanza name, in one table shared by
-- all hosts of the process, and answers
--   <iq type='get' to='<virtual host>'><query xmlns='urn:bench:s2s-count'/></iq>
-- with <count from to name n/> for each of them. Counts only grow.

local st = require "util.stanza";

local xmlns = "urn:bench:s2s-count";
local counts = prosody.bench_s2s_counts;
if not counts then
	counts = {};
	prosody.bench_s2s_counts = counts;
end

module:hook("route/remote", function (event)
	local key = event.from_host .. " " .. event.to_host .. " " .. event.stanza.name;
	counts[key] = (counts[key] or 0) + 1;
	-- nil: the stanza goes on to mod_s2s as if this module were not here
end, 1000);

module:hook("iq-get/host/" .. xmlns .. ":query", function (event)
	local reply = st.reply(event.stanza):tag("query", { xmlns = xmlns });
	for key, n in pairs(counts) do
		local from, to, name = key:match("^(%S+) (%S+) (%S+)$");
		reply:tag("count", { from = from, to = to, name = name, n = tostring(n) }):up();
	end
	event.origin.send(reply);
	return true;
end);
