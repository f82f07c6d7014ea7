-- XEP-0033 (Extended Stanza Addressing) for the components of this Prosody host.
--
-- The channel server sends one <message/> to the host with an <addresses/> list of the
-- followers it is for, instead of one copy per follower: Prosody then parses the
-- notification once and delivers a copy to each address, as if the component had sent
-- each copy itself (same origin, same 'from', bounces go back to the component).
--
-- Only components of this server may use it (users could otherwise spam through it).
-- 'to' and 'cc' addresses stay in every copy, marked delivered='true'; 'bcc' addresses
-- are removed, so no follower learns who else follows. Each JID receives one copy.
--
-- Options (host or global): buddycloud_multicast_limit (default 1000), the most
-- addresses one stanza may carry; it is advertised in disco#info (XEP-0033 section 7).

local st = require "util.stanza";
local jid_prep = require "util.jid".prep;
local dataform = require "util.dataforms".new;

local xmlns_address = "http://jabber.org/protocol/address";
local post = prosody.core_post_stanza;
local limit = module:get_option_number("buddycloud_multicast_limit", 1000);

module:add_feature(xmlns_address);
module:add_extension(dataform {
	{ name = "FORM_TYPE", type = "hidden", value = xmlns_address },
	{ name = "message", type = "text-single" },
}:form({ message = tostring(limit) }, "result"));

local recipient_types = { to = true, cc = true, bcc = true };

-- A copy of `stanza` for one recipient. Its children are shared with the other copies,
-- which is safe because delivery only reads them (anything that keeps or changes a
-- stanza, such as stream management's queue, clones it first).
local function copy_for(stanza, to)
	local attr = {};
	for k, v in pairs(stanza.attr) do attr[k] = v; end
	attr.to = to;
	local copy = st.stanza(stanza.name, attr);
	for i, child in ipairs(stanza) do copy[i] = child; end
	for i, tag in ipairs(stanza.tags) do copy.tags[i] = tag; end
	return copy;
end

local function multicast(event)
	local origin, stanza = event.origin, event.stanza;
	local addresses = stanza:get_child("addresses", xmlns_address);
	if not addresses then return; end -- an ordinary message to the host
	if stanza.attr.type == "error" then return true; end
	if origin.type ~= "component" then
		origin.send(st.error_reply(stanza, "auth", "forbidden",
			"Only this server's components may send multicast stanzas"));
		return true;
	end

	local recipients, seen, kept, malformed = {}, {}, {}, nil;
	for address in addresses:childtags("address", xmlns_address) do
		local kind = address.attr.type;
		if address.attr.delivered ~= "true" and recipient_types[kind] then
			local to = address.attr.jid and jid_prep(address.attr.jid);
			if not to then
				malformed = address.attr.jid or address.attr.uri or "(none)";
			elseif not seen[to] then
				seen[to] = true;
				recipients[#recipients + 1] = to;
			end
			if kind ~= "bcc" then
				local shown = st.clone(address);
				shown.attr.delivered = "true";
				kept[#kept + 1] = shown;
			end
		else
			kept[#kept + 1] = address;
		end
	end
	-- All or nothing: a refused stanza reaches no one, so the sender may resend it whole.
	if malformed then
		origin.send(st.error_reply(stanza, "modify", "jid-malformed",
			"Not a JID: " .. malformed:sub(1, 100)));
		return true;
	end
	if #recipients > limit then
		origin.send(st.error_reply(stanza, "modify", "not-acceptable",
			"Too many receivers: at most " .. limit .. " per stanza"));
		return true;
	end

	stanza:remove_children("addresses", xmlns_address);
	if #kept > 0 then
		local shown = st.stanza("addresses", { xmlns = xmlns_address });
		for _, address in ipairs(kept) do shown:add_direct_child(address); end
		stanza:add_direct_child(shown);
	end
	for _, to in ipairs(recipients) do
		post(origin, copy_for(stanza, to));
	end
	return true;
end

module:hook("message/host", multicast, 10);
