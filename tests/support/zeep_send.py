"""Drives MailUpSend, MailUpManage and MailUpReport with zeep, as a Python CRM
integration would, loading the three WSDLs from the server. Prints one JSON
object for the Rust test to check.

usage: zeep_send.py send BASE_URL USER PASSWORD CONSOLE_ID GROUP_NAME LIST_GUID
       zeep_send.py report BASE_URL ACCESS_KEY NEWSLETTER_ID
"""
import json
import sys
import time

import zeep
from lxml import etree


def inner(text):
    """The inner document of a result string, as an element."""
    return etree.fromstring(text.encode("utf-8"))


def code(text):
    return int(inner(text).findtext("errorCode"))


def clients(base):
    send = zeep.Client(f"{base}/MailupSend.asmx?WSDL")
    manage = zeep.Client(f"{base}/MailupManage.asmx?WSDL")
    report = zeep.Client(f"{base}/MailupReport.asmx?WSDL")
    return (
        send.service,
        # Manage over SOAP 1.2, the others over 1.1.
        manage.bind("MailupManage", "MailupManageSoap12"),
        report.service,
    )


def send_phase(base, user, password, console_id, group_name, guid):
    send, manage, _ = clients(base)
    out = {}
    out["wrong_password"] = code(send.LoginFromId(user=user, pwd="wrong", consoleId=int(console_id)))
    login = inner(send.LoginFromId(user=user, pwd=password, consoleId=int(console_id)))
    key = login.findtext("accessKey")
    out["key"] = key
    lists = inner(manage.GetLists(accessKey=key))
    out["lists"] = [l.findtext("listName") for l in lists.iter("list")]
    groups = inner(send.GetGroups(accessKey=key, listID=1))
    group_id = next(int(g.findtext("groupID")) for g in groups.iter("group") if g.findtext("groupName") == group_name)
    out["group_id"] = group_id
    fields = inner(send.GetFields_st(accessKey=key))
    out["fields"] = [f.get("Name") for f in fields.iter("Field")][:3]
    out["unknown_list"] = code(send.GetGroups(accessKey=key, listID=99))
    out["created_group"] = code(manage.CreateGroup(accessKey=key, listID=1, groupName="From zeep", groupNotes=""))
    Option = send._client.get_type("{http://services.mailupnet.it/WS}Option")
    ArrayOfOption = send._client.get_type("{http://services.mailupnet.it/WS}ArrayOfOption")
    options = ArrayOfOption(Option=[Option(Key="note", Value="zeep"), Option(Key="from_email", Value="news@shop.example")])
    html = '<html><body><p>Ciao [nome]</p><a href="https://shop.example/spring">Spring</a> <a href="https://shop.example/faq">FAQ</a></body></html>'
    created = inner(send.CreateNewsletter(accessKey=key, listID=1, subject="Spring", type="HTML", content=html, options=options))
    newsletter = int(created.findtext("newsletterID"))
    out["newsletter"] = newsletter
    send_options = ArrayOfOption(Option=[Option(Key="send_to", Value="GROUPS"), Option(Key="recipients", Value=str(group_id))])
    sent = inner(send.SendNewsletter(accessKey=key, listID=1, newsletterID=newsletter, options=send_options))
    delivery = int(sent.findtext("deliveryID"))
    out["delivery"] = delivery
    seen = []
    deadline = time.monotonic() + 60
    while True:
        status = inner(send.GetNewsletterDeliveryStatus(accessKey=key, deliveryID=delivery))
        word = status.findtext("deliveryStatus/status")
        if not seen or seen[-1] != word:
            seen.append(word)
        if word == "COMPLETED" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    out["statuses"] = seen
    out["to_send"] = int(status.findtext("deliveryStatus/toSend"))
    out["progress"] = int(status.findtext("deliveryStatus/progress"))
    out["clone_wrong_guid"] = send.CloneMessage(accessKey=key, listId="1", listGuid="0f8fad5b-d9cb-469f-a165-70867728950e", messageToCloneId=newsletter, subject="")
    out["clone_bad_guid"] = send.CloneMessage(accessKey=key, listId="1", listGuid="nope", messageToCloneId=newsletter, subject="")
    out["clone"] = send.CloneMessage(accessKey=key, listId="1", listGuid=guid, messageToCloneId=newsletter, subject="Copy")
    return out


def report_phase(base, key, newsletter):
    _, manage, report = clients(base)
    document = inner(report.ReportByMessageEN(accessKey=key, listID=1, messageID=int(newsletter)))
    out = {
        "code": int(document.findtext("errorCode")),
        "opens": int(document.find("Opens").get("Total")),
        "openers": sorted(o.get("Email") for o in document.iter("Open")),
        "clicks": {c.get("Url"): int(c.get("Total")) for c in document.iter("Clicks")},
    }
    out["logout"] = code(report.Logout(accessKey=key))
    out["after_logout"] = code(manage.GetLists(accessKey=key))
    return out


if sys.argv[1] == "send":
    result = send_phase(*sys.argv[2:8])
else:
    result = report_phase(*sys.argv[2:5])
print(json.dumps(result))
